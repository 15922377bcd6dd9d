import type { GenerationOutcome, GenerationSink } from "./generate.js";
import type { GenerationEvent } from "./types.js";

type Settled = { ok: true; value: GenerationOutcome } | { ok: false; error: unknown };

/**
 * Turns a callback-driven generation into a stream of deltas and one end event. Text that
 * arrives while the consumer is busy is joined into one delta, so a slow reader costs fewer
 * messages instead of a growing backlog. When the consumer stops early (cancel, deadline,
 * error) the generation is aborted, and the stream only finishes once it has really stopped,
 * so the caller can safely hand its sequence to the next request.
 */
export async function* deltaStream(
  run: (sink: Pick<GenerationSink, "text">, signal: AbortSignal) => Promise<GenerationOutcome>,
  signal: AbortSignal,
): AsyncGenerator<GenerationEvent> {
  const controller = new AbortController();
  const forwardAbort = () => controller.abort(signal.reason);
  if (signal.aborted) forwardAbort();
  else signal.addEventListener("abort", forwardAbort, { once: true });
  let pending: string[] = [];
  let wake: (() => void) | undefined;
  let settled: Settled | undefined;
  // The reader is woken on the next turn of the event loop, not at once: by then node-llama-cpp
  // has dispatched the next token's decode, so serializing and sending this delta overlaps with it
  // instead of delaying it. Chunks arriving meanwhile are joined.
  let wakeScheduled = false;
  const wakeReader = () => {
    wakeScheduled = false;
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  const notify = () => {
    if (wakeScheduled || !wake) return;
    wakeScheduled = true;
    setImmediate(wakeReader);
  };
  const task = (async () => {
    try {
      settled = { ok: true, value: await run({ text: (chunk) => { if (chunk) { pending.push(chunk); notify(); } } }, controller.signal) };
    } catch (error) {
      settled = { ok: false, error };
    }
    notify();
  })();

  try {
    for (;;) {
      if (pending.length > 0) {
        const text = pending.length === 1 ? pending[0]! : pending.join("");
        pending = [];
        yield { type: "delta", text };
        continue;
      }
      if (settled) break;
      await new Promise<void>((resolve) => (wake = resolve));
    }
    const result: Settled = settled;
    if (!result.ok) throw result.error;
    yield { type: "end", ...result.value };
  } finally {
    if (!settled) controller.abort(new DOMException("the consumer stopped reading", "AbortError"));
    await task;
    signal.removeEventListener("abort", forwardAbort);
  }
}
