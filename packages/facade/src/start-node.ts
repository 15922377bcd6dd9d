import { builtinSourceDefaults } from "@llmlb/plugins";
import { createLogger, ListenerGuard, NodeRuntime, type GrpcServer, type Logger, type NodeConfig } from "@llmlb/runtime";
import { createNodeClients, remoteTransport, type NodeClients } from "./clients.js";
import { startHttpServer, type HttpServer, type HttpServerOptions } from "./http/http-server.js";
import { registerOpenAiRoutes } from "./http/v1/openai-routes.js";
import { registerModelRoutes } from "./http/v0/model-routes.js";
import { PullRegistry } from "./http/v0/pull-registry.js";
import { registerMetricsRoute } from "./http/metrics-routes.js";
import { registerDashboardRoutes } from "./http/dashboard-routes.js";
import { prefetchRouterModels } from "./router-link.js";
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
  /** Drains both listeners, then closes the runtime. */
  close(): Promise<void>;
}

export function loggerFor(config: NodeConfig): Logger {
  return createLogger({
    level: config.logLevel,
    format: config.logFormat,
    secrets: [config.apiKey, config.hfToken, config.githubToken, config.routerApiKey],
  });
}

/** The REST facade's routes, the same in front of an in-process or a remote runtime. */
function facadeRoutes(clients: NodeClients, pulls: PullRegistry, blobs: BlobSource | undefined): NonNullable<HttpServerOptions["register"]> {
  return [
    (app) => registerOpenAiRoutes(app, clients),
    (app) => registerModelRoutes(app, clients, { pulls, blobs }),
    (app) => registerDashboardRoutes(app),
    (app) => registerSourceRoutes(app, clients),
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
  const http = await startHttpServer({
    interceptors: [],
    clients,
    guard,
    host: config.host,
    port: config.httpPort,
    logger,
    register: facadeRoutes(clients, pulls, undefined),
  });
  logger.info({ runtime: config.runtimeUrl }, "serving HTTP in front of a remote runtime");
  return {
    clients,
    http,
    logger,
    reload: () => guard.reload(),
    async close() {
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
      register: [...facadeRoutes(clients, pulls, blobSourceOf(runtime)), (app) => registerMetricsRoute(app, runtime.metrics)],
    });
    runtime.onClose(() => pulls.close());
    void prefetchRouterModels(config, clients, pulls, logger, runtime.shutdownSignal).catch((err: unknown) =>
      logger.warn({ err }, "router prefetch failed"),
    );
    const listeners = { grpc, http };
    return {
      runtime,
      clients,
      ...listeners,
      logger,
      reload: () => runtime.guard.reload(),
      async close() {
        runtime.health.setServing(false);
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
