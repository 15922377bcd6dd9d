import type { Logger } from "@llmlb/runtime";
import type { NodeClients } from "../../clients.js";

/**
 * Background pulls started over HTTP (the dashboard's Pull button, a router's push). A second pull
 * of the same model joins the first; the resolver itself also shares one transfer between callers.
 */
export class PullRegistry {
  private readonly running = new Map<string, Promise<void>>();
  private readonly controller = new AbortController();

  constructor(
    private readonly clients: NodeClients,
    private readonly logger: Logger,
  ) {}

  /** Starts (or joins) a pull; returns whether this call started it. */
  start(modelId: string): { started: boolean } {
    if (this.running.has(modelId)) return { started: false };
    const run = (async () => {
      try {
        for await (const _event of this.clients.resolver.resolve({ target: { case: "modelId", value: modelId } }, { signal: this.controller.signal })) {
          // Progress reaches watchers through WatchModels; nothing to do per event here.
        }
        this.logger.info({ modelId }, "pull finished");
      } catch (err) {
        if (!this.controller.signal.aborted) this.logger.warn({ modelId, err }, "pull failed");
      } finally {
        this.running.delete(modelId);
      }
    })();
    this.running.set(modelId, run);
    return { started: true };
  }

  isRunning(modelId: string): boolean {
    return this.running.has(modelId);
  }

  async close(): Promise<void> {
    this.controller.abort();
    await Promise.allSettled(this.running.values());
  }
}
