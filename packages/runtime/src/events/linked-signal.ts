/**
 * A signal that aborts when any of `signals` does (with that one's reason), and `dispose`, which
 * detaches it from them once it is no longer needed.
 *
 * Instead of AbortSignal.any wherever one of the signals outlives the work (the node's shutdown,
 * a listener's close): Node.js 20 keeps a reference to every signal AbortSignal.any made on each of
 * its sources until that source aborts, so one made per request from the engine's shutdown signal
 * grew the inference runner's heap by ~90 bytes a request, for as long as it ran.
 */
export function linkedSignal(...signals: AbortSignal[]): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const aborted = signals.find((s) => s.aborted);
  if (aborted) {
    controller.abort(aborted.reason);
    return { signal: controller.signal, dispose: () => {} };
  }
  const dispose = () => {
    for (const s of signals) s.removeEventListener("abort", onAbort);
  };
  function onAbort(this: AbortSignal) {
    dispose();
    controller.abort(this.reason);
  }
  for (const s of signals) s.addEventListener("abort", onAbort);
  return { signal: controller.signal, dispose };
}
