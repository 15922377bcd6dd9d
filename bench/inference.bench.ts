/**
 * Streaming overhead of our Chat over gRPC versus node-llama-cpp called directly, same model
 * (the generated tiny llama, CPU, 1 thread, context 1024, greedy, 512 tokens), same process,
 * alternating runs, medians. The node runs in this process (startTestNode, model pulled from the
 * HF stand-in); the client is @grpc/grpc-js over h2c on loopback, one connection.
 *
 *   grpc_stream_ratio   tokens/s over gRPC (h2c on loopback, server streaming) / tokens/s direct; target ≥ 0.95
 *   ttft_added_ms       time to first token over gRPC minus direct (median); target ≤ 5 ms
 *   parallel4_vs_1      aggregate tokens/s of 4 parallel gRPC streams / 1 stream
 *
 *   node --conditions=source --import tsx bench/inference.bench.ts
 */
import fs from "node:fs";
import path from "node:path";
import { LlamaChat, type ChatHistoryItem } from "node-llama-cpp";
import { InferenceService, type ChatResponse } from "../packages/runtime/src/gen/llmlb/node/v1/inference_pb.js";
import { tinyModelBytes } from "../testkit/gguf/tiny-gguf.js";
import { grpcJsClient, startTestNode, tempDir } from "../testkit/node/index.js";
import { startHfStandin } from "../testkit/standins/index.js";

const TOKENS = 512;
const REPETITIONS = 9;
const PARALLEL = 4;
const MODEL_ID = "tiny-bench";
const REPO = "llmlb-bench/tiny-GGUF";

interface Run {
  tokens: number;
  ms: number;
  firstTokenMs: number;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const rate = (run: Run) => run.tokens / (run.ms / 1000);
const prompt = (i: number) => `Tell me a long story, number ${i}`;

async function main(): Promise<void> {
  const hf = await startHfStandin();
  await hf.addRepo(REPO, { files: { "tiny.gguf": tinyModelBytes() } });
  const files = tempDir("llmlb-bench-");
  const supported = path.join(files.dir, "supported_models.json");
  fs.writeFileSync(
    supported,
    JSON.stringify({
      models: [
        {
          id: MODEL_ID, name: "tiny", description: "generated tiny llama", repo: REPO, recommended_filename: "tiny.gguf",
          size_bytes: tinyModelBytes().byteLength, required_memory_bytes: 16 << 20, tags: [], capabilities: ["text-generation"],
          quantization: "F32", parameter_count: 200_000, format: "gguf",
        },
      ],
    }),
  );
  const node = await startTestNode({
    LLMLB_SUPPORTED_MODELS: supported,
    HF_ENDPOINT: hf.url,
    LLMLB_PARALLELISM: String(PARALLEL),
    LLMLB_THREADS: "1",
    LLMLB_GPU: "cpu",
  });
  const client = grpcJsClient(InferenceService, node.grpcUrl);

  function viaGrpc(i: number): Promise<Run> {
    const started = performance.now();
    let firstTokenMs = 0;
    let tokens = 0;
    const request = { modelId: MODEL_ID, messages: [{ role: "user", content: prompt(i) }], temperature: 0, maxTokens: TOKENS };
    return new Promise((resolve, reject) => {
      const call = client.stream<ChatResponse>("chat", request);
      call.on("data", (message: ChatResponse) => {
        if (message.delta && firstTokenMs === 0) firstTokenMs = performance.now() - started;
        if (message.usage) tokens = message.usage.completionTokens;
      });
      call.on("error", reject);
      call.on("end", () => resolve({ tokens, ms: performance.now() - started, firstTokenMs }));
    });
  }

  // Downloads and loads the model, then warms both paths.
  await viaGrpc(0);
  const { path: modelPath } = (await node.runtime.store.getModel(MODEL_ID))!;
  const llama = await node.runtime.engine.llama();
  const model = await llama.loadModel({ modelPath });
  // One sequence: node-llama-cpp then decodes at once instead of waiting a loop turn for others to
  // join the batch, the fastest way to run one stream directly.
  const context = await model.createContext({ contextSize: 1024, sequences: 1, threads: 1 });
  const chat = new LlamaChat({ contextSequence: context.getSequence() });

  async function direct(i: number): Promise<Run> {
    const history: ChatHistoryItem[] = [{ type: "user", text: prompt(i) }, { type: "model", response: [] }];
    const started = performance.now();
    let firstTokenMs = 0;
    let tokens = 0;
    await chat.generateResponse(history, {
      temperature: 0,
      maxTokens: TOKENS,
      repeatPenalty: false,
      onTextChunk: () => {
        if (firstTokenMs === 0) firstTokenMs = performance.now() - started;
      },
      onToken: (t) => (tokens += t.length),
    });
    return { tokens, ms: performance.now() - started, firstTokenMs };
  }

  await direct(0);
  // Greedy output of the random tiny model reaches EOS early for a few prompts; only prompts that
  // run the full TOKENS on the direct path are used (the gRPC path then produces the same tokens).
  const prompts: number[] = [];
  const directRuns: Run[] = [];
  const grpcRuns: Run[] = [];
  for (let i = 1; directRuns.length < REPETITIONS; i++) {
    const run = await direct(i);
    if (run.tokens !== TOKENS) continue;
    prompts.push(i);
    directRuns.push(run);
    grpcRuns.push(await viaGrpc(i));
  }
  for (const run of grpcRuns) if (run.tokens !== TOKENS) throw new Error(`a gRPC run produced ${run.tokens} tokens, not ${TOKENS}`);

  const parallelRuns: number[] = [];
  const singleRuns: number[] = [];
  for (let round = 0; round < 5; round++) {
    const started = performance.now();
    const runs = await Promise.all(Array.from({ length: PARALLEL }, (_, k) => viaGrpc(prompts[(round + k) % prompts.length]!)));
    parallelRuns.push(runs.reduce((sum, r) => sum + r.tokens, 0) / ((performance.now() - started) / 1000));
    singleRuns.push(rate(await viaGrpc(prompts[round % prompts.length]!)));
  }

  const directRate = median(directRuns.map(rate));
  const grpcRate = median(grpcRuns.map(rate));
  const directTtft = median(directRuns.map((r) => r.firstTokenMs));
  const grpcTtft = median(grpcRuns.map((r) => r.firstTokenMs));
  const lines = {
    tokens_per_run: TOKENS,
    repetitions: REPETITIONS,
    direct_tokens_per_s: directRate.toFixed(0),
    grpc_tokens_per_s: grpcRate.toFixed(0),
    grpc_stream_ratio: (grpcRate / directRate).toFixed(3),
    ttft_direct_ms: directTtft.toFixed(2),
    ttft_grpc_ms: grpcTtft.toFixed(2),
    ttft_added_ms: (grpcTtft - directTtft).toFixed(2),
    parallel1_tokens_per_s: median(singleRuns).toFixed(0),
    parallel4_tokens_per_s: median(parallelRuns).toFixed(0),
    parallel4_vs_1: (median(parallelRuns) / median(singleRuns)).toFixed(2),
  };
  for (const [key, value] of Object.entries(lines)) console.log(`${key}=${value}`);

  client.close();
  await context.dispose();
  await model.dispose();
  await node.stop();
  await hf.close();
  files.cleanup();
}

await main();
