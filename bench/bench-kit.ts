/** Pieces the benchmarks share: statistics, the tiny model on a node, direct node-llama-cpp runs. */
import { execFileSync, fork } from "node:child_process";
import path from "node:path";
import { engineSettingsFrom } from "@llmlb/runtime";
import { allowedCpus, parseRunnerCpus, pinnedNode } from "../packages/runtime/src/host/cpu-affinity.js";
import type { ChatResponse } from "../packages/runtime/src/gen/llmlb/node/v1/inference_pb.js";
import { grpcJsClient, resolveModel, startTestNode, type TestNode } from "../testkit/node/index.js";
import { startTinyWorld, TINY_CHAT_ID, type TinyWorld } from "../testkit/world/tiny-world.js";

import { median } from "./stats.js";

export { median, percentile } from "./stats.js";

import type { StreamRun } from "./timed-run.js";

export type { StreamRun } from "./timed-run.js";

export const tokensPerSecond = (run: StreamRun) => run.tokens / (run.ms / 1000);

/** Tokens after the first per second, from the first token to the end of the stream: the per-token cost without the call's start. */
const rateAfterFirstToken = (run: StreamRun) => (run.tokens - 1) / ((run.ms - run.firstTokenMs) / 1000);

/**
 * A stream measured against the direct baseline: medians of tokens/s and of time to first token,
 * and the ratio of the rates after the first token (which still includes the stream's end).
 */
export function streamComparison(direct: readonly StreamRun[], measured: readonly StreamRun[]) {
  const directRate = median(direct.map(tokensPerSecond));
  const measuredRate = median(measured.map(tokensPerSecond));
  const directTtft = median(direct.map((r) => r.firstTokenMs));
  const measuredTtft = median(measured.map((r) => r.firstTokenMs));
  const afterFirstTokenRatio = median(measured.map(rateAfterFirstToken)) / median(direct.map(rateAfterFirstToken));
  return { directRate, measuredRate, ratio: measuredRate / directRate, afterFirstTokenRatio, directTtft, measuredTtft, ttftAdded: measuredTtft - directTtft };
}

/** Prints a benchmark's figures as `key=value` lines, the form bench/run.ts and the README use. */
export function printFigures(figures: Record<string, string | number>): void {
  for (const [key, value] of Object.entries(figures)) console.log(`${key}=${value}`);
}

/**
 * The stream benchmarks run twice. Pinned: every generation, the baseline's and the node's, on
 * the same CPU: the node's inference runner there (LLMLB_RUNNER_CPUS) and the baselines'
 * processes (directChat, engineBaseline) too, taking turns; this process (the node's API, the
 * clients) on another CPU, where it stays. The CPUs of a VM are not
 * equal (here the second generates 4-5% faster than the first, which takes the machine's
 * interrupts), so the baseline and the runner must not be compared on different ones. Free: every thread wherever the OS puts it, as a node runs by
 * default; on a small VM this mostly measures where the scheduler happens to place
 * node-llama-cpp's threads (the baseline alone moves by tens of percent). Pinned needs Linux,
 * taskset and two CPUs.
 */
export interface CpuLayout {
  /** This process: the node's event loop, the clients. */
  node: string;
  /** The node's inference runner and the baselines' processes. */
  generation: string;
}

function benchCpuLayout(): CpuLayout | undefined {
  const cpus = allowedCpus();
  if (cpus.length < 2) return undefined;
  try {
    parseRunnerCpus(String(cpus[1]));
  } catch {
    return undefined;
  }
  return { node: String(cpus[0]), generation: String(cpus[1]) };
}

/** Every thread of this process on `cpus` (threads started later inherit it). */
function pinThisProcess(cpus: string): void {
  execFileSync("taskset", ["--all-tasks", "--cpu-list", "--pid", cpus, String(process.pid)], { stdio: "ignore" });
}

/**
 * Runs `measure` in the pinned layout (see CpuLayout; when the machine allows it), then with every
 * thread free, each with a node of its own, and prints
 * `head`, the layout, the pinned figures under their names and the free ones ending in _unpinned
 * (only the free ones, under their names, where pinning is not possible).
 */
export async function printInBothLayouts(
  env: Record<string, string>,
  head: Record<string, string | number>,
  measure: (bench: BenchNode) => Promise<Record<string, string | number>>,
): Promise<void> {
  const layout = benchCpuLayout();
  const run = async (pinned?: CpuLayout) => {
    const bench = await startBenchNode({ ...env, ...(pinned ? { LLMLB_RUNNER_CPUS: pinned.generation } : {}) }, pinned);
    try {
      return await measure(bench);
    } finally {
      await bench.close();
    }
  };
  let pinned: Record<string, string | number> | undefined;
  if (layout) {
    const everyCpu = allowedCpus().join(",");
    pinThisProcess(layout.node);
    try {
      pinned = await run(layout);
    } finally {
      pinThisProcess(everyCpu);
    }
  }
  const free = await run();
  printFigures({ ...head, cpu_layout: layout ? `node:${layout.node},generation:${layout.generation}` : "free", ...(pinned ?? free) });
  if (pinned) printFigures(Object.fromEntries(Object.entries(free).map(([key, value]) => [`${key}_unpinned`, value])));
}

export interface BenchNode {
  world: TinyWorld;
  node: TestNode;
  modelId: string;
  /** The CPU of the node's inference runner and of the baselines when pinned. */
  generationCpus?: string;
  close(): Promise<void>;
}

/** A node in this process with the tiny chat model on disk (CPU, 1 thread). */
export async function startBenchNode(env: Record<string, string> = {}, layout?: CpuLayout): Promise<BenchNode> {
  const world = await startTinyWorld();
  const node = await startTestNode({ ...world.env, ...env });
  await resolveModel(node, TINY_CHAT_ID); // on disk before anything is timed
  return {
    world,
    node,
    modelId: TINY_CHAT_ID,
    ...(layout ? { generationCpus: layout.generation } : {}),
    async close() {
      await node.stop();
      await world.close();
    },
  };
}

/** A process that runs one timed generation per question (the baselines), pinned with the runner when the layout is. */
export interface TimedProcess {
  run(prompt: string, maxTokens: number): Promise<StreamRun>;
  dispose(): Promise<void>;
}

/**
 * node-llama-cpp called directly on the same file, one sequence: the baseline of every stream ratio.
 * With `jsonSchema`, every answer is constrained by the grammar built (once) from it.
 *
 * It runs in a process of its own (bench/direct-chat-process.ts), like the node's inference
 * runner, and when pinned on the runner's CPU: the two take turns on it, and this process (the
 * node's API and the clients) never leaves its own CPU. Each run is timed inside that process, so
 * the baseline pays no process boundary.
 */
export async function directChat(bench: BenchNode, contextSize = 1024, options: { jsonSchema?: object } = {}): Promise<TimedProcess> {
  const { path: modelPath } = (await bench.node.runtime.store.getModel(bench.modelId))!;
  return timedProcess(bench, "direct-chat-process.ts", { modelPath, gpu: bench.node.config.gpu, contextSize, ...(options.jsonSchema ? { jsonSchema: options.jsonSchema } : {}) });
}

/**
 * The node's InferenceEngine with the node's settings on the node's copy of the model, in a
 * process of its own placed as the runner is (bench/engine-process.ts): the runner's calls
 * without the process boundary, the baseline of the runner figures.
 */
export async function engineBaseline(bench: BenchNode): Promise<TimedProcess> {
  const { config, resolver, engine } = bench.node.runtime;
  const located = await resolver.locateModel(bench.modelId, { signal: AbortSignal.timeout(60_000), localOnly: true });
  // The runner's settings: the node's, with the budget it resolved at start; never unloaded between runs.
  const settings = { ...engineSettingsFrom(config), memoryBudget: engine.memoryBudget, keepAliveMs: -1 };
  return timedProcess(bench, "engine-process.ts", { located, settings });
}

async function timedProcess(bench: BenchNode, file: string, init: object): Promise<TimedProcess> {
  const pinned = bench.generationCpus ? pinnedNode(bench.generationCpus) : undefined;
  const child = fork(path.join(import.meta.dirname, file), [JSON.stringify(init)], {
    ...(pinned ? { execPath: pinned.execPath } : {}),
    execArgv: [...(pinned?.prefixArgs ?? []), ...process.execArgv],
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<never>((_, reject) => child.once("exit", (code, signal) => reject(new Error(`the baseline process ${file} exited (${signal ?? code})`))));
  exited.catch(() => undefined);
  const answer = <T>() => Promise.race([new Promise<T>((resolve) => child.once("message", (m) => resolve(m as T))), exited]);
  await answer<{ ready: true }>();
  return {
    async run(prompt, maxTokens) {
      const done = answer<{ ok: true; result: StreamRun } | { ok: false; error: string }>();
      child.send({ t: "run", prompt, maxTokens });
      const outcome = await done;
      if (!outcome.ok) throw new Error(`the baseline process ${file} failed: ${outcome.error}`);
      return outcome.result;
    },
    async dispose() {
      child.send({ t: "close" });
      await exited.catch(() => undefined);
    },
  };
}

/**
 * Alternating runs of the direct baseline and the path under test on the same prompts. The random
 * tiny model reaches EOS early on some prompts, so only prompts that run the full `tokens`
 * directly are kept; the path under test must then produce exactly as many.
 */
export async function pairedRuns(options: {
  label: string;
  tokens: number;
  repetitions: number;
  direct: (prompt: number) => Promise<StreamRun>;
  measured: (prompt: number) => Promise<StreamRun>;
}): Promise<{ prompts: number[]; direct: StreamRun[]; measured: StreamRun[] }> {
  const result = { prompts: [] as number[], direct: [] as StreamRun[], measured: [] as StreamRun[] };
  for (let i = 1; result.direct.length < options.repetitions; i++) {
    const run = await options.direct(i);
    if (run.tokens !== options.tokens) continue;
    const measured = await options.measured(i);
    if (measured.tokens !== options.tokens) throw new Error(`a ${options.label} run produced ${measured.tokens} tokens, not ${options.tokens}`);
    result.prompts.push(i);
    result.direct.push(run);
    result.measured.push(measured);
  }
  return result;
}

/**
 * Calls of each path before any is timed. The first calls of a path run its JavaScript (the
 * node's listener, Connect, the runner's boundary, the client) before V8 has optimised it: in
 * this process the time to first token added over gRPC fell from about 4.3 ms over calls 1-10 to
 * about 2.9 ms from call 20-30 on, and stayed there. A node serving all day is past this within
 * its first seconds, so the figures are taken after it (and the warm-up is printed on its own).
 */
export const WARM_UP_CALLS = 30;

/** The warm-up calls whose first tokens are reported as the path's first calls (after the one that loads the model). */
const FIRST_CALLS = 10;

/**
 * The path under test against the direct baseline on the same prompts: both warmed up
 * (WARM_UP_CALLS, alternating, on prompts the timed runs do not use), then alternating runs
 * (pairedRuns), compared by their medians (streamComparison). `firstCallsTtftAdded`: the time to
 * first token added over the first calls after the model is loaded, before the warm-up.
 */
export async function compareToDirect(options: {
  label: string;
  tokens: number;
  repetitions: number;
  prompt: (i: number) => string;
  direct: Pick<TimedProcess, "run">;
  measured: (prompt: number) => Promise<StreamRun>;
}): Promise<ReturnType<typeof streamComparison> & { firstCallsTtftAdded: number; runs: Awaited<ReturnType<typeof pairedRuns>> }> {
  const { tokens, prompt, direct, measured } = options;
  const warmUpPrompt = (call: number) => 1_000_000 + call;
  // The first call loads the model: it is in no figure.
  await measured(warmUpPrompt(0));
  await direct.run(prompt(warmUpPrompt(0)), tokens);
  const firstCalls = { direct: [] as number[], measured: [] as number[] };
  for (let call = 1; call <= WARM_UP_CALLS; call++) {
    const viaPath = await measured(warmUpPrompt(call));
    const directly = await direct.run(prompt(warmUpPrompt(call)), tokens);
    if (call > FIRST_CALLS) continue;
    firstCalls.measured.push(viaPath.firstTokenMs);
    firstCalls.direct.push(directly.firstTokenMs);
  }
  const runs = await pairedRuns({ ...options, direct: (i) => direct.run(prompt(i), tokens), measured });
  return {
    ...streamComparison(runs.direct, runs.measured),
    runs,
    firstCallsTtftAdded: median(firstCalls.measured) - median(firstCalls.direct),
  };
}

/** One Chat streamed over gRPC, timed as the direct baseline is: first delta, completion tokens from usage. */
export function grpcChatRun(client: ReturnType<typeof grpcJsClient>, request: object): Promise<StreamRun> {
  const started = performance.now();
  let firstTokenMs = 0;
  let tokens = 0;
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

/** CPU time (user + system, every thread) of this process, in µs. */
export function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}
