import type { GenerationOutcome } from "./generate.js";
import type { DeltaParts, GenerationEvent, ToolCallDelta } from "./types.js";

type Settled = { ok: true; value: GenerationOutcome } | { ok: false; error: unknown };

/**
 * Turns a callback-driven generation into a stream of deltas and one end event. After the first
 * delta the reader is woken on a later turn of the event loop, not inside the token callback: by
 * then node-llama-cpp has dispatched the next decode, so sending a delta overlaps with it instead
 * of delaying it.
 * Text that arrives while the reader is busy or paced is joined. When the reader stops early
 * (cancel, deadline, error) the generation is aborted, and the stream only finishes once it has
 * really stopped.
 */
export async function* deltaStream(
  run: (emit: (parts: Partial<DeltaParts>) => void, signal: AbortSignal) => Promise<GenerationOutcome>,
  signal: AbortSignal,
  /**
   * Shortest time between two deltas. Text produced faster than this is joined into fewer, larger
   * deltas: every message crosses the runner's channel and the client's transport, and on a busy
   * machine each one costs the generation more than its bytes.
   */
  minIntervalMs: number,
): AsyncGenerator<GenerationEvent> {
  const controller = new AbortController();
  const forwardAbort = () => controller.abort(signal.reason);
  if (signal.aborted) forwardAbort();
  else signal.addEventListener("abort", forwardAbort, { once: true });

  let pending: Array<Partial<DeltaParts>> = [];
  let settled: Settled | undefined;
  let lastDeltaAt = -Infinity;
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  const wakeReader = () => {
    timer = immediate = undefined;
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  const notify = () => {
    if (!wake || immediate) return;
    const wait = settled ? 0 : lastDeltaAt + minIntervalMs - performance.now();
    if (wait > 0) {
      timer ??= setTimeout(wakeReader, wait);
      return;
    }
    if (timer) clearTimeout(timer);
    timer = undefined;
    // The first delta is what the client waits on (time to first token): no detour through the loop.
    if (lastDeltaAt === -Infinity) wakeReader();
    else immediate = setImmediate(wakeReader);
  };

  const task = (async () => {
    try {
      const emit = (parts: Partial<DeltaParts>) => {
        if (isEmpty(parts)) return;
        pending.push(parts);
        notify();
      };
      settled = { ok: true, value: await run(emit, controller.signal) };
    } catch (error) {
      settled = { ok: false, error };
    }
    notify();
  })();

  try {
    for (;;) {
      if (pending.length > 0 && (settled || performance.now() - lastDeltaAt >= minIntervalMs)) {
        const length = nextDeltaLength(pending);
        const parts = mergeParts(pending.slice(0, length));
        pending = pending.slice(length);
        lastDeltaAt = performance.now();
        yield { type: "delta", ...parts };
        continue;
      }
      if (settled && pending.length === 0) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        if (pending.length > 0 || settled) notify();
      });
    }
    const result: Settled = settled;
    if (!result.ok) throw result.error;
    yield { type: "end", ...result.value };
  } finally {
    if (timer) clearTimeout(timer);
    if (immediate) clearImmediate(immediate);
    if (!settled) controller.abort(new DOMException("the consumer stopped reading", "AbortError"));
    await task;
    signal.removeEventListener("abort", forwardAbort);
  }
}

function isEmpty(parts: Partial<DeltaParts>): boolean {
  return !parts.text && !parts.reasoning && !parts.toolCalls?.length && !parts.logprobs?.length;
}

/**
 * How many queued pieces go into the next delta: all, except that a call's first piece (id and
 * name) ends its delta when more of the same call is queued. So a delta holds one entry per call,
 * and a call opens with its own entry, as OpenAI's chunks do.
 */
function nextDeltaLength(pending: ReadonlyArray<Partial<DeltaParts>>): number {
  for (let i = 0; i < pending.length - 1; i++) {
    for (const call of pending[i]!.toolCalls ?? []) {
      if (call.id !== undefined && pending.slice(i + 1).some((later) => later.toolCalls?.some((c) => c.index === call.index))) return i + 1;
    }
  }
  return pending.length;
}

/** Joins queued pieces into one delta; argument pieces of the same tool call become one piece. */
export function mergeParts(pieces: ReadonlyArray<Partial<DeltaParts>>): DeltaParts {
  const merged: DeltaParts = { text: "" };
  for (const piece of pieces) {
    if (piece.text) merged.text += piece.text;
    if (piece.reasoning) merged.reasoning = (merged.reasoning ?? "") + piece.reasoning;
    if (piece.logprobs?.length) (merged.logprobs ??= []).push(...piece.logprobs);
    for (const call of piece.toolCalls ?? []) {
      const calls = (merged.toolCalls ??= []);
      const last: ToolCallDelta | undefined = calls.at(-1);
      if (last && last.index === call.index && last.id === undefined && call.id === undefined) last.arguments += call.arguments;
      else calls.push({ ...call });
    }
  }
  return merged;
}
