import { ApiError, type Api } from "./api.js";
import type { ModelStore } from "./model-store.js";
import { readSse } from "./sse.js";
import type { ModelJson } from "./types.js";

export type FeedStatus = "connecting" | "live" | "reconnecting" | "locked";

const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;
const HUB_INFO_REREAD_MS = 3000;

/**
 * Keeps the store in step with the node: opens GET /v0/events (SSE of every model change), then loads
 * the full list (changes arriving meanwhile are held and replayed), then applies each change as it
 * comes. A dropped stream reconnects with exponential backoff and reloads the list; there is no polling.
 */
export class LiveFeed {
  private readonly controller = new AbortController();
  private wake: (() => void) | undefined;

  constructor(
    private readonly api: Api,
    private readonly store: ModelStore,
    private readonly onStatus: (status: FeedStatus, detail?: string) => void,
  ) {
    api.onKeyChange(() => this.wake?.());
  }

  start(): void {
    void this.run();
  }

  stop(): void {
    this.controller.abort();
    this.wake?.();
  }

  private async run(): Promise<void> {
    const signal = this.controller.signal;
    let backoff = MIN_BACKOFF_MS;
    let first = true;
    while (!signal.aborted) {
      this.onStatus(first ? "connecting" : "reconnecting");
      first = false;
      let detail = "";
      try {
        const body = await this.api.openEvents(signal);
        this.store.holdChanges();
        try {
          this.store.replaceAll(await this.api.listModels());
        } catch (err) {
          this.store.releaseHeld();
          throw err;
        }
        this.onStatus("live");
        backoff = MIN_BACKOFF_MS;
        this.scheduleHubInfoRead(signal);
        for await (const message of readSse(body)) {
          if (message.event === "model") this.store.apply({ kind: "model", model: JSON.parse(message.data) as ModelJson });
          else if (message.event === "removed") this.store.apply({ kind: "removed", id: (JSON.parse(message.data) as { id: string }).id });
        }
        detail = "the node closed the stream";
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError && err.status === 401 && this.api.locked) {
          this.onStatus("locked");
          await this.sleepUntilWoken(Infinity);
          continue;
        }
        detail = err instanceof Error ? err.message : String(err);
      }
      if (signal.aborted) return;
      this.onStatus("reconnecting", detail);
      await this.sleepUntilWoken(backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  /**
   * Hugging Face downloads/likes are fetched by the node in the background when the list is read
   * and are not pushed as changes. If some are missing, read the list once more a little later
   * (once per connection, never a polling loop).
   */
  private scheduleHubInfoRead(signal: AbortSignal): void {
    if (this.store.all().every((m) => m.hub_info !== null)) return;
    const timer = setTimeout(() => {
      if (signal.aborted) return;
      this.store.holdChanges();
      this.api.listModels().then(
        (models) => this.store.replaceAll(models),
        () => this.store.releaseHeld(),
      );
    }, HUB_INFO_REREAD_MS);
    signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
  }

  /** Waits `ms` (or until a new API key arrives or the feed stops). */
  private sleepUntilWoken(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }
}
