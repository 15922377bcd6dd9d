/**
 * Streaming overhead of our Chat over gRPC versus node-llama-cpp called directly, same model
 * (the generated tiny llama, CPU, 1 thread, context 1024, greedy, 512 tokens), the baseline in a
 * process of its own (directChat), both warmed up (WARM_UP_CALLS in bench-kit.ts), alternating
 * runs, medians. The node runs in this process (model pulled from the HF stand-in); the client is
 * @grpc/grpc-js over h2c on loopback, one connection.
 *
 *   grpc_stream_ratio   tokens/s over gRPC (server streaming) / tokens/s direct; target ≥ 0.97
 *   ttft_added_ms       time to first token over gRPC minus direct; target ≤ 5 ms
 *   ttft_added_first_calls_ms   the same over the first 10 calls after the model is loaded,
 *                       before the warm-up (JavaScript not yet optimised by V8); informational
 *   grpc_after_first_token_ratio   the same ratio from each stream's first token to its end: the
 *                       per-token cost and the stream's end, without the time to first token
 *   parallel4_vs_1      aggregate tokens/s of 4 parallel gRPC streams / 1 stream
 *   runner_ipc_us_per_token   the boundary's cost per generated token on the node's side: CPU time
 *                       (user + system) of this process, which only receives, decodes and
 *                       acknowledges the runner's deltas while the runner generates, per token
 *                       (the engine called directly, no gRPC). CPU time, not wall time: on a
 *                       shared machine wall-time differences of a few µs per token drown in noise.
 *   runner_stream_ratio       tokens/s of the engine called through the runner (no gRPC) / the
 *                       same InferenceEngine, with the node's settings, in a process of its own
 *                       placed as the runner is (engineBaseline: no boundary); warmed up, alternating
 *   runner_wall_us_per_token  wall time per token after the first, through the runner minus that
 *                       baseline (median of paired runs)
 *   runner_ttft_added_ms      the same comparison for the time to the first delta
 *
 * Measured twice (see CpuLayout in bench-kit.ts): the names above with every generation (the
 * baselines' and the runner's) on one CPU and this process on another, the
 * same names ending in _unpinned with every thread free.
 *
 *   node --conditions=source --import tsx bench/inference.bench.ts
 */
import { InferenceService } from "../packages/runtime/src/gen/llmlb/node/v1/inference_pb.js";
import { grpcJsClient } from "../testkit/node/index.js";
import {
  compareToDirect, cpuMicros, directChat, engineBaseline, grpcChatRun, median, printInBothLayouts, tokensPerSecond,
  type BenchNode, type StreamRun,
} from "./bench-kit.js";
import { timeGeneration } from "./timed-run.js";

const TOKENS = 512;
const REPETITIONS = 15;
const PARALLEL = 4;

const prompt = (i: number) => `Tell me a long story, number ${i}`;

async function measure(bench: BenchNode): Promise<Record<string, string | number>> {
  const client = grpcJsClient(InferenceService, bench.node.grpcUrl);
  const viaGrpc = (i: number): Promise<StreamRun> =>
    grpcChatRun(client, { modelId: bench.modelId, messages: [{ role: "user", content: prompt(i) }], temperature: 0, maxTokens: TOKENS });

  const direct = await directChat(bench);
  const grpc = await compareToDirect({ label: "gRPC", tokens: TOKENS, repetitions: REPETITIONS, prompt, direct, measured: viaGrpc });
  const { prompts } = grpc.runs;

  const parallelRates: number[] = [];
  const singleRates: number[] = [];
  for (let round = 0; round < 5; round++) {
    const started = performance.now();
    const runs = await Promise.all(Array.from({ length: PARALLEL }, (_, k) => viaGrpc(prompts[(round + k) % prompts.length]!)));
    parallelRates.push(runs.reduce((sum, r) => sum + r.tokens, 0) / ((performance.now() - started) / 1000));
    singleRates.push(tokensPerSecond(await viaGrpc(prompts[round % prompts.length]!)));
  }

  // The runner's own cost: the same engine call through the process boundary, and in a process of
  // its own with no boundary (placed as the runner is), both warmed up and alternating.
  const cpuSpent = new Map<StreamRun, number>();
  const viaRunner = async (i: number): Promise<StreamRun> => {
    const cpuBefore = cpuMicros();
    const run = await timeGeneration(bench.node.runtime.engine.chat({ modelId: bench.modelId, messages: [{ role: "user", content: prompt(i) }], temperature: 0, maxTokens: TOKENS }));
    cpuSpent.set(run, cpuMicros() - cpuBefore);
    return run;
  };
  const engineAlone = await engineBaseline(bench);
  const runner = await compareToDirect({ label: "runner", tokens: TOKENS, repetitions: REPETITIONS, prompt, direct: engineAlone, measured: viaRunner });
  const { direct: engineRuns, measured: runnerRuns } = runner.runs;
  const afterFirst = (run: StreamRun) => run.ms - run.firstTokenMs;
  const runnerCpuUsPerToken = runnerRuns.reduce((sum, run) => sum + cpuSpent.get(run)!, 0) / (runnerRuns.length * TOKENS);
  const runnerWallUsPerToken = median(runnerRuns.map((run, k) => ((afterFirst(run) - afterFirst(engineRuns[k]!)) * 1000) / (TOKENS - 1)));
  await engineAlone.dispose();
  client.close();
  await direct.dispose();

  return {
    direct_tokens_per_s: grpc.directRate.toFixed(0),
    grpc_tokens_per_s: grpc.measuredRate.toFixed(0),
    grpc_stream_ratio: grpc.ratio.toFixed(3),
    grpc_after_first_token_ratio: grpc.afterFirstTokenRatio.toFixed(3),
    ttft_direct_ms: grpc.directTtft.toFixed(2),
    ttft_grpc_ms: grpc.measuredTtft.toFixed(2),
    ttft_added_ms: grpc.ttftAdded.toFixed(2),
    ttft_added_first_calls_ms: grpc.firstCallsTtftAdded.toFixed(2),
    parallel1_tokens_per_s: median(singleRates).toFixed(0),
    parallel4_tokens_per_s: median(parallelRates).toFixed(0),
    parallel4_vs_1: (median(parallelRates) / median(singleRates)).toFixed(2),
    runner_stream_ratio: runner.ratio.toFixed(3),
    runner_ipc_us_per_token: runnerCpuUsPerToken.toFixed(1),
    runner_wall_us_per_token: runnerWallUsPerToken.toFixed(1),
    runner_ttft_added_ms: runner.ttftAdded.toFixed(2),
  };
}

await printInBothLayouts({ LLMLB_PARALLELISM: String(PARALLEL) }, { tokens_per_run: TOKENS, repetitions: REPETITIONS }, measure);
