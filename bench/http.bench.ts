/**
 * The HTTP facade's overhead, same run, same tiny model (CPU, 1 thread, greedy, 512 tokens):
 *
 *   sse_stream_ratio    tokens/s of /v1/chat/completions streamed over SSE / tokens/s of
 *                       node-llama-cpp called directly (median of alternating runs); target ≥ 0.95
 *   ttft_added_ms       time to first token over SSE minus direct (median)
 *   ttft_added_first_calls_ms   the same over the first 10 calls after the model is loaded,
 *                       before the warm-up (see WARM_UP_CALLS in bench-kit.ts); informational
 *   sse_after_first_token_ratio   the ratio from each stream's first token to its end: the
 *                       per-token cost and the stream's end, without the time to first token
 *   v0_models_rps       GET /v0/models requests/s with 50 concurrent keep-alive clients
 *   v0_models_p50_ms / v0_models_p99_ms   their latency
 *
 * The SSE figures are measured twice (see CpuLayout in bench-kit.ts): pinned, then free (names
 * ending in _unpinned); the /v0 figures once, with every thread free.
 *
 *   node --conditions=source --import tsx bench/http.bench.ts
 */
import { Agent, request } from "undici";
import {
  compareToDirect, directChat, percentile, printFigures, printInBothLayouts, startBenchNode,
  type BenchNode, type StreamRun,
} from "./bench-kit.js";

const TOKENS = 512;
const REPETITIONS = 15;
const CLIENTS = 50;
const LIST_REQUESTS = 5_000;
const prompt = (i: number) => `Tell me a long story, number ${i}`;

async function viaSse(base: string, modelId: string, i: number): Promise<StreamRun> {
  const started = performance.now();
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: modelId, messages: [{ role: "user", content: prompt(i) }], temperature: 0, max_tokens: TOKENS,
      stream: true, stream_options: { include_usage: true },
    }),
  });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let firstTokenMs = 0;
  let tokens = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      const chunk = JSON.parse(event.slice(6)) as { choices: Array<{ delta: { content?: string } }>; usage?: { completion_tokens: number } | null };
      if (firstTokenMs === 0 && chunk.choices[0]?.delta.content) firstTokenMs = performance.now() - started;
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
  }
  return { tokens, ms: performance.now() - started, firstTokenMs };
}

async function measureSse(bench: BenchNode): Promise<Record<string, string | number>> {
  const direct = await directChat(bench);
  const comparison = await compareToDirect({
    label: "SSE", tokens: TOKENS, repetitions: REPETITIONS, prompt, direct,
    measured: (i) => viaSse(bench.node.httpUrl, bench.modelId, i),
  });
  await direct.dispose();
  return {
    direct_tokens_per_s: comparison.directRate.toFixed(0),
    sse_tokens_per_s: comparison.measuredRate.toFixed(0),
    sse_stream_ratio: comparison.ratio.toFixed(3),
    sse_after_first_token_ratio: comparison.afterFirstTokenRatio.toFixed(3),
    ttft_added_ms: comparison.ttftAdded.toFixed(2),
    ttft_added_first_calls_ms: comparison.firstCallsTtftAdded.toFixed(2),
  };
}

await printInBothLayouts({}, { tokens_per_run: TOKENS, repetitions: REPETITIONS }, measureSse);

const bench = await startBenchNode();
const base = bench.node.httpUrl;
const agent = new Agent({ connections: CLIENTS, pipelining: 1 });
const latencies: number[] = [];
let next = 0;
const listStarted = performance.now();
await Promise.all(
  Array.from({ length: CLIENTS }, async () => {
    while (next < LIST_REQUESTS) {
      next++;
      const started = performance.now();
      const res = await request(`${base}/v0/models`, { dispatcher: agent });
      await res.body.arrayBuffer();
      if (res.statusCode !== 200) throw new Error(`GET /v0/models answered ${res.statusCode}`);
      latencies.push(performance.now() - started);
    }
  }),
);
const listSeconds = (performance.now() - listStarted) / 1000;
await agent.close();

printFigures({
  v0_models_clients: CLIENTS,
  v0_models_requests: latencies.length,
  v0_models_rps: (latencies.length / listSeconds).toFixed(0),
  v0_models_p50_ms: percentile(latencies, 50).toFixed(2),
  v0_models_p99_ms: percentile(latencies, 99).toFixed(2),
});
await bench.close();
