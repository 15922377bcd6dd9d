import { createLogger, NodeRuntime, type GrpcServer, type Logger, type NodeConfig } from "@llmlb/runtime";
import { createNodeClients, type NodeClients } from "./clients.js";
import { startHttpServer, type HttpServer } from "./http/http-server.js";
import { registerOpenAiRoutes } from "./http/v1/openai-routes.js";
import { registerModelRoutes } from "./http/v0/model-routes.js";
import { PullRegistry } from "./http/v0/pull-registry.js";
import { registerMetricsRoute } from "./http/metrics-routes.js";
import { registerDashboardRoutes } from "./http/dashboard-routes.js";
import { prefetchRouterModels } from "./router-link.js";
import { registerSourceRoutes } from "./http/v0/source-routes.js";
import { blobSourceOf } from "./http/v0/store-blob-source.js";

export interface RunningNode {
  runtime: NodeRuntime;
  clients: NodeClients;
  grpc: GrpcServer;
  http: HttpServer;
  logger: Logger;
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

/** Starts one node: the runtime in this process, gRPC (h2c) and HTTP listeners over the same services. */
export async function startNode(config: NodeConfig, logger: Logger = loggerFor(config)): Promise<RunningNode> {
  const runtime = await NodeRuntime.create(config, logger);
  const clients = createNodeClients(runtime.inProcessTransport());
  const pulls = new PullRegistry(clients, logger);
  let grpc: GrpcServer | undefined;
  try {
    grpc = await runtime.listenGrpc();
    const http = await startHttpServer({
      routes: runtime.routes,
      interceptors: runtime.interceptors(),
      clients,
      apiKey: config.apiKey,
      host: config.host,
      port: config.httpPort,
      logger,
      register: [
        (app) => registerOpenAiRoutes(app, clients),
        (app) => registerModelRoutes(app, clients, { pulls, blobs: blobSourceOf(runtime) }),
        (app) => registerMetricsRoute(app, runtime.metrics),
        (app) => registerDashboardRoutes(app),
        (app) => registerSourceRoutes(app, clients),
      ],
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
