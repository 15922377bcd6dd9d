/**
 * JSON-schema-constrained generation (512 tokens) over gRPC versus node-llama-cpp called directly with the same
 * grammar, same model (the generated tiny llama, CPU, 1 thread, context 1024, greedy), same
 * process, alternating runs, medians. The schema asks for more array items than fit in the token
 * budget, so every run samples exactly TOKENS tokens under the grammar.
 *
 *   grammar_stream_ratio   tokens/s over gRPC (response_format json_schema) / tokens/s direct; target ≥ 0.95
 *
 *   node --conditions=source --import tsx bench/grammar.bench.ts
 */
import { LlamaChat, type ChatHistoryItem } from "node-llama-cpp";
import { loadLlama, silentLogger } from "@llmlb/runtime";
import { InferenceService, type ChatResponse } from "../packages/runtime/src/gen/llmlb/node/v1/inference_pb.js";
import { grpcJsClient } from "../testkit/node/index.js";
import { median, pairedRuns, startBenchNode, tokensPerSecond, type StreamRun } from "./bench-kit.js";

const TOKENS = 512;
const REPETITIONS = 7;
const SCHEMA = {
  type: "object",
  properties: {
    title: { type: "string", maxLength: 40 },
    tags: { type: "array", items: { type: "string", maxLength: 12 }, minItems: 600 },
  },
  required: ["title", "tags"],
  additionalProperties: false,
} as const;

const prompt = (i: number) => `Describe a book as JSON, number ${i}`;

const bench = await startBenchNode({ LLMLB_PARALLELISM: "1" });
const client = grpcJsClient(InferenceService, bench.node.grpcUrl);

function viaGrpc(i: number): Promise<StreamRun> {
  const started = performance.now();
  let firstTokenMs = 0;
  let tokens = 0;
  const request = {
    modelId: bench.modelId,
    messages: [{ role: "user", content: prompt(i) }],
    temperature: 0,
    maxTokens: TOKENS,
    responseFormat: { type: "json_schema", schemaJson: JSON.stringify(SCHEMA) },
  };
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

/** node-llama-cpp on the same file with the grammar built (once) from the same schema. */
async function directGrammarChat() {
  const { path } = (await bench.node.runtime.store.getModel(bench.modelId))!;
  const llama = await loadLlama(bench.node.config.gpu, 1, silentLogger());
  const model = await llama.loadModel({ modelPath: path });
  const context = await model.createContext({ contextSize: 1024, sequences: 1, threads: 1 });
  const chat = new LlamaChat({ contextSequence: context.getSequence() });
  const grammar = await llama.createGrammarForJsonSchema(SCHEMA as Parameters<typeof llama.createGrammarForJsonSchema>[0]);
  return {
    async run(text: string): Promise<StreamRun> {
      const history: ChatHistoryItem[] = [{ type: "user", text }, { type: "model", response: [] }];
      const started = performance.now();
      let firstTokenMs = 0;
      let tokens = 0;
      await chat.generateResponse(history, {
        temperature: 0,
        maxTokens: TOKENS,
        repeatPenalty: false,
        grammar,
        onTextChunk: () => {
          if (firstTokenMs === 0) firstTokenMs = performance.now() - started;
        },
        onToken: (t) => (tokens += t.length),
      });
      return { tokens, ms: performance.now() - started, firstTokenMs };
    },
    async dispose() {
      await context.dispose();
      await model.dispose();
    },
  };
}

const direct = await directGrammarChat();
await viaGrpc(0);
await direct.run(prompt(0));

const { direct: directRuns, measured: grpcRuns } = await pairedRuns({
  label: "gRPC json_schema", tokens: TOKENS, repetitions: REPETITIONS,
  direct: (i) => direct.run(prompt(i)),
  measured: viaGrpc,
});

const directRate = median(directRuns.map(tokensPerSecond));
const grpcRate = median(grpcRuns.map(tokensPerSecond));
const lines = {
  grammar_tokens_per_run: TOKENS,
  grammar_repetitions: REPETITIONS,
  grammar_direct_tokens_per_s: directRate.toFixed(0),
  grammar_grpc_tokens_per_s: grpcRate.toFixed(0),
  grammar_stream_ratio: (grpcRate / directRate).toFixed(3),
};
for (const [key, value] of Object.entries(lines)) console.log(`${key}=${value}`);

client.close();
await direct.dispose();
await bench.close();
