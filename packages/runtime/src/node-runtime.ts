import { createRouterTransport, type Interceptor, type Transport } from "@connectrpc/connect";
import type { NodeConfig } from "./config/index.js";
import type { Logger } from "./logging/index.js";
import { ModelEvents } from "./events/model-events.js";
import { staticModelDirectory, type ModelDirectory } from "./catalog/model-entry.js";
import { wireCatalog } from "./catalog/wire.js";
import type { InferenceEngine } from "./engine/engine.js";
import { wireEngine } from "./engine/wire.js";
import type { Store } from "./store/store.js";
import type { Resolver } from "./resolver/resolver.js";
import type { SourceChain } from "./resolver/source-chain.js";
import { wireResolver } from "./resolver/wire.js";
import { NodeMetrics } from "./metrics/node-metrics.js";
import { errorInterceptor, authInterceptor } from "./server/interceptors.js";
import { startGrpcServer, type GrpcServer } from "./server/grpc-server.js";
import { HealthState, createHealthService } from "./services/health-service.js";
import { nodeRoutes, SERVED_SERVICE_NAMES, type NodeServices } from "./services/routes.js";

/**
 * One node: its components and the service implementations over them. Listeners (gRPC here,
 * HTTP in the facade) and the in-process transport all serve the same routes.
 */
export class NodeRuntime {
  readonly health = new HealthState(SERVED_SERVICE_NAMES);
  readonly services: NodeServices;
  /** Model lifecycle events: resolver, store and engine publish, the catalog listens. */
  readonly events = new ModelEvents();
  /** Catalog lookup by id (supported + registered models); set by wireCatalog. */
  models: ModelDirectory = staticModelDirectory([]);
  /** The model store under config.home; set by wireResolver during create. */
  store!: Store;
  /** Model id or adapter reference → verified local files; set by wireResolver during create. */
  resolver!: Resolver;
  /** The effective source chain; set by wireResolver during create. */
  sources!: SourceChain;
  /** Inference with node-llama-cpp; set by wireEngine during create. */
  engine!: InferenceEngine;
  /** Prometheus metrics, fed by the events, the call interceptor and a scrape-time probe. */
  readonly metrics: NodeMetrics;
  /** Aborted when the node starts shutting down; long-lived streams end on it. */
  readonly shutdownSignal: AbortSignal;
  private readonly shutdownController = new AbortController();
  private readonly closers: Array<() => Promise<void> | void> = [];

  private constructor(
    readonly config: NodeConfig,
    readonly logger: Logger,
  ) {
    this.shutdownSignal = this.shutdownController.signal;
    this.services = {
      catalog: {},
      resolver: {},
      inference: {},
      health: createHealthService(this.health),
    };
    // Read at scrape time: the engine is wired after construction.
    this.metrics = new NodeMetrics(this.events, async () =>
      (this.engine?.list() ?? []).map((m) => ({ modelId: m.modelId, queued: m.queuedRequests, active: m.activeRequests })),
    );
  }

  static async create(config: NodeConfig, logger: Logger): Promise<NodeRuntime> {
    const runtime = new NodeRuntime(config, logger);
    try {
      // Components are wired here, each by one function of its own folder:
      // store + resolver (resolver/), catalog (catalog/), engine (engine/).
      await wireResolver(runtime);
      await wireCatalog(runtime);
      await wireEngine(runtime);
    } catch (err) {
      await runtime.close();
      throw err;
    }
    return runtime;
  }

  /** Interceptors every listener applies, in order: errors outermost, then auth. */
  interceptors(): Interceptor[] {
    return [errorInterceptor, authInterceptor(this.config.apiKey), this.metrics.interceptor()];
  }

  get routes() {
    return nodeRoutes(this.services);
  }

  /** A Connect transport that calls the services in this process (what the facade uses by default). */
  inProcessTransport(): Transport {
    return createRouterTransport(this.routes, { router: { interceptors: [errorInterceptor, this.metrics.interceptor()] } });
  }

  async listenGrpc(host = this.config.host, port = this.config.grpcPort): Promise<GrpcServer> {
    const server = await startGrpcServer({ routes: this.routes, interceptors: this.interceptors(), host, port });
    this.logger.info({ url: server.url }, "gRPC listening (h2c)");
    return server;
  }

  /** Registers cleanup to run at close, last registered first. */
  onClose(closer: () => Promise<void> | void): void {
    this.closers.push(closer);
  }

  /** Stops serving: health NOT_SERVING, streams end, components close. */
  async close(): Promise<void> {
    this.health.setServing(false);
    this.shutdownController.abort();
    for (const closer of this.closers.reverse()) {
      try {
        await closer();
      } catch (err) {
        this.logger.warn({ err }, "error while closing");
      }
    }
  }
}
