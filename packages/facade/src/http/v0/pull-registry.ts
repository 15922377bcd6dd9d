import { LlmlbError, linkedSignal, type Logger } from "@llmlb/runtime";
import { ModelState, type Model } from "@llmlb/runtime/gen/llmlb/node/v1/model_pb";
import type { NodeClients } from "../../clients.js";

/**
 * Background pulls started over HTTP (the dashboard's Pull button, a router's push). A second pull
 * of the same model joins the first; the resolver itself also shares one transfer between callers.
 */
export class PullRegistry {
  private readonly running = new Map<string, { done: Promise<boolean>; controller: AbortController }>();
  private readonly controller = new AbortController();

  constructor(
    private readonly clients: NodeClients,
    private readonly logger: Logger,
  ) {}

  /** Starts (or joins) a pull; returns whether this call started it, and its outcome (true: on disk). */
  start(modelId: string): { started: boolean; done: Promise<boolean> } {
    const running = this.running.get(modelId);
    if (running) return { started: false, done: running.done };
    const controller = new AbortController();
    const { signal, dispose } = linkedSignal(this.controller.signal, controller.signal);
    const run = (async () => {
      try {
        for await (const _event of this.clients.resolver.resolve({ target: { case: "modelId", value: modelId } }, { signal })) {
          // Progress reaches watchers through WatchModels; nothing to do per event here.
        }
        this.logger.info({ modelId }, "pull finished");
        return true;
      } catch (err) {
        if (controller.signal.aborted) this.logger.info({ modelId }, "pull cancelled; the partial download is kept for the next pull");
        // The node logs why (the resolver warns of every failed fetch, whoever asked for it).
        else if (!signal.aborted) this.logger.debug({ modelId, err }, "pull failed");
        return false;
      } finally {
        dispose();
        this.running.delete(modelId);
      }
    })();
    this.running.set(modelId, { done: run, controller });
    return { started: true, done: run };
  }

  /**
   * Stops waiting for a pull started here; the download stops when nobody else waits for it (its
   * partial file stays for the next pull). False when no pull of the model was started here.
   */
  async cancel(modelId: string): Promise<boolean> {
    const running = this.running.get(modelId);
    if (!running) return false;
    running.controller.abort();
    await running.done;
    return true;
  }

  isRunning(modelId: string): boolean {
    return this.running.has(modelId);
  }

  async close(): Promise<void> {
    this.controller.abort();
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
  }
}

/** A pull of a model this node cannot run is refused up front (MODEL_UNSUPPORTED), not started and failed. */
export function assertPullable(model: Model): void {
  if (model.state === ModelState.UNSUPPORTED) {
    throw new LlmlbError("MODEL_UNSUPPORTED", `model ${model.id} is listed but this node cannot run it: ${model.unsupportedReason}`, { model_id: model.id });
  }
}
