/**
 * One timed generation, and the loop of a baseline process (bench/direct-chat-process.ts,
 * bench/engine-process.ts) that answers the benchmark's questions with them. Kept apart from
 * bench-kit.ts so a baseline process loads nothing of the node.
 */
import type { GenerationEvent } from "@llmlb/runtime";

export interface StreamRun {
  tokens: number;
  ms: number;
  firstTokenMs: number;
}

/** Times the engine's event stream of one generation: its first delta, its end, the completion tokens it reports. */
export async function timeGeneration(events: AsyncIterable<GenerationEvent>): Promise<StreamRun> {
  const started = performance.now();
  let firstTokenMs = 0;
  let tokens = 0;
  for await (const event of events) {
    if (event.type === "delta" && firstTokenMs === 0) firstTokenMs = performance.now() - started;
    if (event.type === "end") tokens = event.usage.completionTokens;
  }
  return { tokens, ms: performance.now() - started, firstTokenMs };
}

type Ask = { t: "run"; prompt: string; maxTokens: number } | { t: "close" };

/**
 * Answers the parent's { prompt, maxTokens } questions with `run`, and exits after `close` when asked to or at once when the parent goes away (a
 * benchmark that dies takes its baseline with it). Tells the parent it is ready.
 */
export function serveTimedRuns(run: (prompt: string, maxTokens: number) => Promise<StreamRun>, close: () => Promise<void>): void {
  process.on("message", (ask: Ask) => {
    if (ask.t === "close") {
      void close().then(() => process.exit(0));
      return;
    }
    run(ask.prompt, ask.maxTokens).then(
      (result) => process.send!({ ok: true, result }),
      (err: unknown) => process.send!({ ok: false, error: String(err) }),
    );
  });
  process.on("disconnect", () => process.exit(0));
  process.send!({ ready: true });
}
