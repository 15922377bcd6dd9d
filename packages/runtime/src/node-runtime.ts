import { createDirectTransport } from "./server/direct-transport.js";
import { createRouterTransport, type Interceptor, type Transport } from "@connectrpc/connect";
import type { NodeConfig } from "./config/index.js";
import type { Logger } from "./logging/index.js";
import type { ModelEvents } from "./events/model-events.js";
import type { Catalog } from "./catalog/catalog.js";
import type { ModelDirectory } from "./catalog/model-entry.js";
import type { RunnerEngine } from "./engine/runner/runner-engine.js";
import type { Store } from "./store/store.js";
import type { Resolver } from "./resolver/resolver.js";
import type { SourceChain } from "./resolver/source-chain.js";
import type { NodeMetrics } from "./metrics/node-metrics.js";
import type { SourceDefaults } from "./plugin/loader.js";
import { composeNode, type NodeComponents } from "./node/compose.js";
import { errorInterceptor } from "./server/interceptors.js";
import { ListenerGuard } from "./security/listener-guard.js";
import type { Fleet } from "./fleet/fleet.js";
import type { LiveFiles } from "./transfer/live-files.js";
import type { StateStore } from "./state/state-store.js";
import { startGrpcServer, type GrpcServer } from "./server/grpc-server.js";
import type { HealthState } from "./services/health-service.js";
import { nodeRoutes, type NodeServices } from "./services/routes.js";

/**
 * One node: its components (built by composeNode) and the service implementations over them.
 * Listeners (gRPC here, HTTP in the facade) and the in-process transport all serve the same routes.
 */
export class NodeRuntime {
  readonly health: HealthState;
  readonly services: NodeServices;
  /** Model lifecycle events: resolver, store and engine publish, the catalog listens. */
  readonly events: ModelEvents;
  /** What models this node offers (supported + registered) and their states. */
  readonly catalog: Catalog;
  /** Catalog lookup by id (supported + registered models). */
  readonly models: ModelDirectory;
  /** The model store under config.home. */
  readonly store: Store;
  /** Model id or adapter reference → verified local files. */
  readonly resolver: Resolver;
  /** The effective source chain. */
  readonly sources: SourceChain;
  /** The files being downloaded now, and how far each is verified (what a follower of a download may read). */
  readonly downloads: LiveFiles;
  /** Inference with node-llama-cpp in a supervised runner process. */
  readonly engine: RunnerEngine;
  /** State a fleet shares (node.db, plus Redis/PostgreSQL with LLMLB_STATE_URL). */
  readonly state: StateStore;
  /** Membership of a fleet (LLMLB_STATE_URL set); the HTTP listener calls fleet.join(url) once it knows its URL. */
  readonly fleet: Fleet | undefined;
  /** Prometheus metrics, fed by the events, the call interceptor and a scrape-time probe. */
  readonly metrics: NodeMetrics;
  private listenerGuard: ListenerGuard | undefined;
  /** Aborted when the node starts shutting down; long-lived streams end on it. */
  readonly shutdownSignal: AbortSignal;
  private readonly closers: Array<() => Promise<void> | void> = [];

  private constructor(
    readonly config: NodeConfig,
    readonly logger: Logger,
    components: NodeComponents,
    private readonly shutdownController: AbortController,
  ) {
    this.shutdownSignal = shutdownController.signal;
    this.health = components.health;
    this.services = components.services;
    this.events = components.events;
    this.catalog = components.catalog;
    this.models = components.catalog.directory;
    this.store = components.store;
    this.resolver = components.resolver;
    this.sources = components.sources;
    this.downloads = components.downloads;
    this.engine = components.engine;
    this.state = components.state;
    this.fleet = components.fleet;
    this.metrics = components.metrics;
    this.closers.push(() => components.close());
  }

  /**
   * Builds a node. `sourceDefaults` is the source chain used when config.json names none, with
   * the options each built-in source gets (the facade passes @llmlb/plugins' built-ins).
   */
  static async create(config: NodeConfig, logger: Logger, options: { sourceDefaults?: SourceDefaults } = {}): Promise<NodeRuntime> {
    const shutdownController = new AbortController();
    const components = await composeNode({ config, logger, shutdownSignal: shutdownController.signal, ...options });
    return new NodeRuntime(config, logger, components, shutdownController);
  }

  /** This node's base URL as peers reach it: LLMLB_ADVERTISE_URL, or http://<host>:<http port>. */
  advertiseUrl(httpPort: number): string {
    if (this.config.advertiseUrl) return this.config.advertiseUrl;
    const host = this.config.host.includes(":") ? `[${this.config.host}]` : this.config.host;
    return `http://${host}:${httpPort}`;
  }

  /**
   * What both listeners check before reading a request: keys, Host/Origin, limits, stream caps, TLS.
   * Built on first use, so a CLI that runs the services in-process never reads keys or certificates.
   */
  get guard(): ListenerGuard {
    this.listenerGuard ??= new ListenerGuard(this.config, this.logger, (key, outcome) => this.metrics.countAdmission(key, outcome));
    return this.listenerGuard;
  }

  /** Interceptors every listener applies, in order: errors outermost, then metrics (auth is the guard's, before the body). */
  interceptors(): Interceptor[] {
    return [errorInterceptor, this.metrics.interceptor()];
  }

  get routes() {
    return nodeRoutes(this.services);
  }

  /** A Connect transport that calls the services in this process (what the facade uses by default). */
  inProcessTransport(): Transport {
    const interceptors = [errorInterceptor, this.metrics.interceptor()];
    return createDirectTransport(this.routes, interceptors, createRouterTransport(this.routes, { router: { interceptors } }));
  }

  async listenGrpc(host = this.config.host, port = this.config.grpcPort): Promise<GrpcServer> {
    const server = await startGrpcServer({ routes: this.routes, interceptors: this.interceptors(), guard: this.guard, host, port, logger: this.logger });
    this.logger.info({ url: server.url }, this.guard.tls ? "gRPC listening (TLS)" : "gRPC listening (h2c)");
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
