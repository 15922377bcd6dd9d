import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { toConnectError } from "../errors/index.js";
import type { ModelEvents } from "../events/model-events.js";

interface UsageLike {
  promptTokens: number;
  completionTokens: number;
}

/** Loaded-model figures read at scrape time (from the engine, through the inference service). */
export type LoadedModelsProbe = () => Promise<Array<{ modelId: string; queued: number; active: number }>>;

/**
 * Prometheus metrics of one node. Everything is derived from the model event bus, a Connect
 * interceptor every call passes through, and a probe read at scrape time, so no component needs
 * to know metrics exist.
 */
export class NodeMetrics {
  readonly registry = new Registry();
  private readonly downloadBytes = new Counter({ name: "llmlb_download_bytes_total", help: "Bytes of model files downloaded", labelNames: ["source"], registers: [this.registry] });
  private readonly downloadDuration = new Histogram({
    name: "llmlb_download_duration_seconds", help: "Duration of completed downloads", labelNames: ["source"],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600], registers: [this.registry],
  });
  private readonly downloadFailures = new Counter({ name: "llmlb_download_failures_total", help: "Failed resolutions by reason", labelNames: ["reason"], registers: [this.registry] });
  private readonly blobBytesSent = new Counter({
    name: "llmlb_blob_sent_bytes_total", help: "Bytes of model files sent by the blob route (to peers of the fleet, routers, other nodes)", registers: [this.registry],
  });
  private readonly resolutions = new Counter({ name: "llmlb_resolutions_total", help: "Models installed by source", labelNames: ["source"], registers: [this.registry] });
  private readonly apiRequests = new Counter({
    name: "llmlb_api_requests_total", help: "Requests admitted or refused by the listeners, by API key label (never the key)", labelNames: ["key", "outcome"], registers: [this.registry],
  });
  private readonly tokens = new Counter({ name: "llmlb_inference_tokens_total", help: "Tokens processed", labelNames: ["model", "kind"], registers: [this.registry] });
  private readonly tokensPerSecond = new Histogram({
    name: "llmlb_inference_tokens_per_second", help: "Generation speed of completed requests", labelNames: ["model"],
    buckets: [1, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000], registers: [this.registry],
  });
  private readonly requestDuration = new Histogram({
    name: "llmlb_request_duration_seconds", help: "Latency of service calls by method and status code", labelNames: ["method", "code"],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300], registers: [this.registry],
  });
  private readonly transfers = new Map<string, { startedAt: number; bytes: number; source: string }>();

  constructor(events: ModelEvents, probe?: LoadedModelsProbe) {
    // The event-loop lag is sampled every 100 ms, not prom-client's default 10 ms: 100 wake-ups a
    // second cost an idle node ~1% of a core and interrupt the inference runner's threads on small
    // machines; a stall shorter than 100 ms is not what an operator alerts on.
    collectDefaultMetrics({ register: this.registry, prefix: "llmlb_process_", eventLoopMonitoringPrecision: 100 });
    const loaded = probe;
    new Gauge({
      name: "llmlb_loaded_models", help: "Models loaded in memory", registers: [this.registry],
      async collect() {
        if (loaded) this.set((await loaded()).length);
      },
    });
    new Gauge({
      name: "llmlb_queue_depth", help: "Requests waiting per model", labelNames: ["model"], registers: [this.registry],
      async collect() {
        this.reset();
        for (const m of loaded ? await loaded() : []) this.set({ model: m.modelId }, m.queued);
      },
    });
    events.on((event) => {
      switch (event.type) {
        case "transfer-started":
          if (!event.external) this.transfers.set(event.modelId, { startedAt: performance.now(), bytes: 0, source: event.source });
          break;
        case "transfer-progress": {
          const transfer = this.transfers.get(event.modelId);
          if (transfer && !event.external) {
            // Bytes moved by this transfer: a resume's bytes already on disk were counted by the transfer that fetched them.
            const moved = event.progress.transferredBytes ?? event.progress.completedBytes;
            this.downloadBytes.inc({ source: transfer.source }, Math.max(0, moved - transfer.bytes));
            transfer.bytes = Math.max(transfer.bytes, moved);
          }
          break;
        }
        case "transfer-finished": {
          const transfer = this.transfers.get(event.modelId);
          this.transfers.delete(event.modelId);
          this.resolutions.inc({ source: event.source });
          if (transfer) this.downloadDuration.observe({ source: event.source }, (performance.now() - transfer.startedAt) / 1000);
          break;
        }
        case "transfer-failed":
          this.transfers.delete(event.modelId);
          this.downloadFailures.inc({ reason: event.code });
          break;
        case "transfer-cancelled":
          this.transfers.delete(event.modelId);
          break;
        case "tokens-processed":
          this.tokens.inc({ model: event.modelId, kind: "prompt" }, event.promptTokens);
          this.tokens.inc({ model: event.modelId, kind: "completion" }, event.completionTokens);
          break;
        default:
          break;
      }
    });
  }

  /** Counts bytes the blob route (GET /v0/models/blob/…) sent. */
  countBlobBytes(n: number): void {
    this.blobBytesSent.inc(n);
  }

  /** Counts one listener decision; key is the key's label ("" when keys are off or the route is open). */
  countAdmission(key: string, outcome: string): void {
    this.apiRequests.inc({ key: key || "none", outcome });
  }

  /** Times every call and measures the generation speed of finished Chat/Complete streams (their tokens are counted from the engine's events). */
  interceptor(): Interceptor {
    return (next) => async (req) => {
      const started = performance.now();
      const method = `${req.service.typeName.split(".").pop()}/${req.method.name}`;
      const observe = (code: string) => this.requestDuration.observe({ method, code }, (performance.now() - started) / 1000);
      const observeFailure = (err: unknown) => observe(statusOfFailure(err, req.signal));
      // Server-streaming calls arrive as a stream of (one) request message: read the model id as it passes.
      let modelId: string | undefined;
      const noteModel = (message: unknown) => {
        const id = (message as { modelId?: unknown }).modelId;
        if (typeof id === "string" && id) modelId ??= id;
      };
      if (!req.stream) noteModel(req.message);
      const tapped = req.stream
        ? {
            ...req,
            message: (async function* () {
              for await (const message of req.message) {
                noteModel(message);
                yield message;
              }
            })(),
          }
        : req;
      try {
        const res = await next(tapped);
        if (!res.stream) {
          observe("ok");
          return res;
        }
        const recordUsage = (usage: UsageLike | undefined, firstToken: number | undefined) => {
          if (!usage || !modelId) return;
          const seconds = (performance.now() - (firstToken ?? started)) / 1000;
          if (usage.completionTokens > 0 && seconds > 0) this.tokensPerSecond.observe({ model: modelId }, usage.completionTokens / seconds);
        };
        return {
          ...res,
          message: (async function* () {
            let firstToken: number | undefined;
            let usage: UsageLike | undefined;
            try {
              for await (const message of res.message) {
                const m = message as { delta?: unknown; usage?: UsageLike };
                if (firstToken === undefined && typeof m.delta === "string" && m.delta) firstToken = performance.now();
                if (m.usage) usage = m.usage;
                yield message;
              }
              observe("ok");
            } catch (err) {
              observeFailure(err);
              throw err;
            } finally {
              recordUsage(usage, firstToken);
            }
          })(),
        };
      } catch (err) {
        observeFailure(err);
        throw err;
      }
    };
  }

  /** Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * The gRPC status a failed call ends with, as its client sees it: a call whose client went away or
 * ran out of time is Canceled or DeadlineExceeded whatever the handler then threw (often a write
 * to a closed stream), and a typed error is its own code (the error interceptor, outside this
 * one, has not converted it yet).
 */
function statusOfFailure(err: unknown, signal: AbortSignal): string {
  const cause = signal.aborted ? ConnectError.from(signal.reason, Code.Canceled) : toConnectError(err);
  return Code[cause.code] ?? "unknown";
}
