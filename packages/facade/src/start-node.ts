import { builtinSourceDefaults } from "@llmlb/plugins";
import { createLogger, ListenerGuard, LogRing, NodeRuntime, type GrpcServer, type Logger, type NodeConfig } from "@llmlb/runtime";
import { createNodeClients, remoteTransport, type NodeClients } from "./clients.js";
import { startHttpServer, type HttpServer, type HttpServerOptions } from "./http/http-server.js";
import { registerOpenAiRoutes } from "./http/v1/openai-routes.js";
import { registerResponsesRoute } from "./http/v1/responses.js";
import { registerModelRoutes } from "./http/v0/model-routes.js";
import { PullRegistry } from "./http/v0/pull-registry.js";
import { registerMetricsRoute } from "./http/metrics-routes.js";
import { registerDashboardRoutes } from "./http/dashboard-routes.js";
import { RouterLink } from "./router/router-link.js";
import { registerSourceRoutes } from "./http/v0/source-routes.js";
import { blobSourceOf } from "./http/v0/store-blob-source.js";
import type { BlobSource } from "./http/v0/blob-source.js";

export interface RunningNode {
  runtime: NodeRuntime;
  clients: NodeClients;
  grpc: GrpcServer;
  http: HttpServer;
  logger: Logger;
  /** Re-reads the API keys file and the TLS certificate (what SIGHUP does). */
  reload(): void;
  /** Registration, heartbeats and sync with an llmlb router (LLMLB_ROUTER_URL). */
  router: RouterLink;
  /** Drains both listeners, then closes the runtime. */
  close(): Promise<void>;
}

/** The last log lines of loggers made by loggerFor, served to routers at /v0/logs and /api/logs. */
const loggerRings = new WeakMap<Logger, LogRing>();

export function loggerFor(config: NodeConfig, options: { destination?: NodeJS.WritableStream } = {}): Logger {
  const ring = new LogRing();
  const logger = createLogger({
    level: config.logLevel,
    format: config.logFormat,
    secrets: [config.apiKey, config.hfToken, config.githubToken, config.routerApiKey],
    ring,
    ...options,
  });
  loggerRings.set(logger, ring);
  return logger;
}

/** The REST facade's routes, the same in front of an in-process or a remote runtime. */
function facadeRoutes(clients: NodeClients, pulls: PullRegistry, blobs: BlobSource | undefined, router: RouterLink): NonNullable<HttpServerOptions["register"]> {
  return [
    (app) => registerOpenAiRoutes(app, clients),
    (app) => registerResponsesRoute(app, clients),
    (app) => registerModelRoutes(app, clients, { pulls, blobs }),
    (app) => registerDashboardRoutes(app),
    (app) => registerSourceRoutes(app, clients),
    (app) => router.routes(app),
  ];
}

export interface RunningFacade {
  clients: NodeClients;
  http: HttpServer;
  logger: Logger;
  /** Re-reads the API keys file and the TLS certificate (what SIGHUP does). */
  reload(): void;
  close(): Promise<void>;
}

/**
 * The HTTP facade alone, in front of a runtime elsewhere (LLMLB_RUNTIME_URL, gRPC): /v0, /v1 and the
 * dashboard go through the same service clients. Model files are not local, so the blob route
 * answers 501, and metrics are the runtime's own business.
 */
export async function startFacade(config: NodeConfig, logger: Logger = loggerFor(config)): Promise<RunningFacade> {
  const clients = createNodeClients(remoteTransport(config.runtimeUrl, config.apiKey));
  const pulls = new PullRegistry(clients, logger);
  const guard = new ListenerGuard(config, logger);
  const router = new RouterLink(config, clients, pulls, logger, loggerRings.get(logger));
  const http = await startHttpServer({
    interceptors: [],
    clients,
    guard,
    host: config.host,
    port: config.httpPort,
    logger,
    register: facadeRoutes(clients, pulls, undefined, router),
  });
  logger.info({ runtime: config.runtimeUrl }, "serving HTTP in front of a remote runtime");
  router.start(http.port);
  return {
    clients,
    http,
    logger,
    reload: () => guard.reload(),
    async close() {
      await router.close();
      await http.close();
      await pulls.close();
    },
  };
}

/** Starts one node: the runtime in this process, gRPC (h2c) and HTTP listeners over the same services. */
export async function startNode(config: NodeConfig, logger: Logger = loggerFor(config)): Promise<RunningNode> {
  const runtime = await NodeRuntime.create(config, logger, { sourceDefaults: builtinSourceDefaults(config) });
  const clients = createNodeClients(runtime.inProcessTransport());
  const pulls = new PullRegistry(clients, logger);
  const router = new RouterLink(config, clients, pulls, logger, loggerRings.get(logger));
  let grpc: GrpcServer | undefined;
  try {
    grpc = await runtime.listenGrpc();
    const http = await startHttpServer({
      routes: runtime.routes,
      interceptors: runtime.interceptors(),
      clients,
      guard: runtime.guard,
      host: config.host,
      port: config.httpPort,
      logger,
      register: [...facadeRoutes(clients, pulls, blobSourceOf(runtime), router), (app) => registerMetricsRoute(app, runtime.metrics)],
    });
    runtime.onClose(() => pulls.close());
    router.start(http.port);
    runtime.fleet?.join(runtime.advertiseUrl(http.port));
    const listeners = { grpc, http };
    return {
      runtime,
      clients,
      ...listeners,
      logger,
      reload: () => runtime.guard.reload(),
      router,
      async close() {
        runtime.health.setServing(false);
        await router.close();
        await Promise.all([listeners.http.close(), listeners.grpc.close()]);
        await runtime.close();
      },
    };
  } catch (err) {
    await grpc?.close(0);
    await runtime.close();
    throw err;
  }
}
