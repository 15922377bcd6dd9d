import { fastifyConnectPlugin } from "@connectrpc/connect-fastify";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { listenOrExplain, type Logger } from "@llmlb/runtime";
import type { NodeClients } from "../clients.js";
import { apiKeyHook } from "./auth-hook.js";
import { registerHealthRoutes } from "./health-routes.js";
import { installErrorHandlers } from "./error-handler.js";

export interface HttpServerOptions {
  /** Connect routes of an in-process node (Connect, gRPC-Web and gRPC protocols); none in front of a remote runtime. */
  routes?: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  clients: NodeClients;
  apiKey: string;
  host: string;
  port: number;
  logger: Logger;
  /** Extra route plugins (/v0 model management, /v1, dashboard, metrics). */
  register?: Array<(app: FastifyInstance, clients: NodeClients) => void | Promise<void>>;
}

export interface HttpServer {
  app: FastifyInstance;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** The HTTP/1.1 listener: Connect protocol for every service plus the REST facade. */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const app = Fastify({
    loggerInstance: options.logger.child({ listener: "http" }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 4 * 1024 * 1024,
    forceCloseConnections: "idle",
    return503OnClosing: true,
    // Wrong types are errors, not something to coerce: "5" is not a max_tokens.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });
  installErrorHandlers(app);
  app.addHook("onRequest", apiKeyHook(options.apiKey));
  if (options.routes) await app.register(fastifyConnectPlugin, { routes: options.routes, interceptors: options.interceptors });
  registerHealthRoutes(app, options.clients);
  for (const register of options.register ?? []) await register(app, options.clients);
  await app.ready();
  const port = await listenOrExplain(app.server, options.host, options.port, { env: "LLMLB_HTTP_PORT", flag: "--http-port" });
  const hostForUrl = options.host.includes(":") ? `[${options.host}]` : options.host;
  options.logger.info({ url: `http://${hostForUrl}:${port}` }, "HTTP listening");
  return { app, port, url: `http://${hostForUrl}:${port}`, close: () => app.close() };
}
