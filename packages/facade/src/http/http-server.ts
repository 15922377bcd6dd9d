import type { Server as TlsServer } from "node:tls";
import { fastifyConnectPlugin } from "@connectrpc/connect-fastify";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import fastifyCors from "@fastify/cors";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { CONNECT_JSON_OPTIONS, LISTENER_CLOSE_GRACE_MS, MAX_JSON_DEPTH, bodyTooDeep, dropUnwaitableDeadline, listenOrExplain, nestsDeeperThan, rpcAccess, type ListenerGuard, type Logger } from "@llmlb/runtime";
import type { NodeClients } from "../clients.js";
import { guardHook } from "./guard-hook.js";
import { registerHealthRoutes } from "./health-routes.js";
import { clientErrorHandler, installErrorHandlers } from "./error-handler.js";
import { parseJsonBodies } from "./json-body.js";
import { sendOpenAiError } from "./openai-error.js";

export interface HttpServerOptions {
  /** Connect routes of an in-process node (Connect, gRPC-Web and gRPC protocols); none in front of a remote runtime. */
  routes?: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  clients: NodeClients;
  /** Keys, Host/Origin, limits, stream caps and TLS: checked before any body byte is read. */
  guard: ListenerGuard;
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
  /** Stops accepting requests, lets open ones finish (up to graceMs), then drops the connections left. */
  close(graceMs?: number): Promise<void>;
}

/** Headers a browser on an allowed origin may send and read (Connect and gRPC-Web included). */
const CORS_REQUEST_HEADERS = ["authorization", "content-type", "connect-protocol-version", "connect-timeout-ms", "x-grpc-web", "x-user-agent", "grpc-timeout"];
const CORS_EXPOSED_HEADERS = ["grpc-status", "grpc-message", "grpc-status-details-bin", "retry-after", "x-request-id"];

/** The HTTP/1.1 listener (HTTPS with a certificate): Connect protocol for every service plus the REST facade. */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { guard } = options;
  const { limits, tls } = guard;
  const headersTimeout = Math.min(limits.headersTimeoutMs, limits.bodyTimeoutMs);
  const serverTimeouts = {
    headersTimeout,
    // Node checks the header and request timeouts on this interval (30 s by default).
    connectionsCheckingInterval: Math.max(100, Math.min(5000, Math.floor(headersTimeout / 2))),
  };
  const app = Fastify({
    loggerInstance: options.logger.child({ listener: "http" }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.maxRequestBytes,
    requestTimeout: limits.bodyTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    ...(tls ? { https: { ...tls.options, ...serverTimeouts } } : { http: serverTimeouts }),
    forceCloseConnections: "idle",
    clientErrorHandler: clientErrorHandler(limits),
    return503OnClosing: true,
    // Wrong types are errors, not something to coerce: "5" is not a max_tokens. A schema Ajv finds
    // ambiguous fails the node's start (and every test) instead of printing a warning on each start;
    // `required` inside if/then names properties of the enclosing object, which strictRequired would refuse.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, strict: true, strictRequired: false } },
  });
  if (tls) tls.track(app.server as unknown as TlsServer);
  // Every body here is JSON (or a Connect call): text/plain would reach the schemas as a string.
  app.removeContentTypeParser("text/plain");
  installErrorHandlers(app);
  // CORS before the guard: a refusal the guard sends (401, 403, 413, 429) must carry the CORS
  // headers too, or a browser on an allowed origin reads only an opaque network error. A foreign
  // origin gets none and goes on to the guard, which refuses it.
  if (guard.hosts.corsEnabled) {
    await app.register(fastifyCors, {
      origin: (origin, callback) => callback(null, origin !== undefined && guard.hosts.isCorsOrigin(origin)),
      methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
      allowedHeaders: CORS_REQUEST_HEADERS,
      exposedHeaders: CORS_EXPOSED_HEADERS,
      maxAge: 600,
      strictPreflight: true,
    });
  }
  app.addHook("onRequest", guardHook(guard));
  // Before the schemas run and the body is copied or serialized anywhere (both recurse).
  app.addHook("preValidation", async (request) => {
    if (nestsDeeperThan(request.body, MAX_JSON_DEPTH)) throw bodyTooDeep();
  });
  refuseCompressedRestBodies(app);
  if (options.routes) {
    // The same deadline rule as on the gRPC listener: Connect and gRPC-Web calls arrive here too.
    app.addHook("onRequest", (request, _reply, done) => {
      dropUnwaitableDeadline(request.raw.headers);
      done();
    });
    await app.register(fastifyConnectPlugin, {
      routes: options.routes,
      interceptors: options.interceptors,
      // Enforced while reading, on the compressed and on the decompressed size.
      readMaxBytes: limits.maxRequestBytes,
      jsonOptions: CONNECT_JSON_OPTIONS,
    });
  }
  // After Connect's plugin, which takes application/json itself in its own scope (made when it was registered).
  parseJsonBodies(app);
  registerHealthRoutes(app, options.clients);
  for (const register of options.register ?? []) await register(app, options.clients);
  await app.ready();
  const port = await listenOrExplain(app.server, options.host, options.port, { env: "LLMLB_HTTP_PORT", flag: "--http-port" });
  const hostForUrl = options.host.includes(":") ? `[${options.host}]` : options.host;
  const url = `${tls ? "https" : "http"}://${hostForUrl}:${port}`;
  options.logger.info({ url }, tls ? "HTTPS listening" : "HTTP listening");
  return {
    app,
    port,
    url,
    async close(graceMs = LISTENER_CLOSE_GRACE_MS) {
      // app.close() waits for every open response; a client that never reads or never hangs up would hold it forever.
      const timer = setTimeout(() => app.server.closeAllConnections(), graceMs);
      timer.unref();
      try {
        await app.close();
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Connect and gRPC-Web calls may compress their bodies (Connect inflates them within the size
 * limit); the REST routes read plain JSON, so a compressed body is refused unread with 415 instead
 * of failing as malformed JSON.
 */
function refuseCompressedRestBodies(app: FastifyInstance): void {
  app.addHook("onRequest", async (request, reply) => {
    const encoding = request.headers["content-encoding"]?.trim().toLowerCase();
    const route = request.routeOptions.url;
    // A method path ("/package.Service/Method", as the guard tells them apart) is a Connect call.
    if (!encoding || encoding === "identity" || route === undefined || rpcAccess(route) !== null) return;
    return sendOpenAiError(reply, 415, {
      message: `content-encoding "${encoding}" is not accepted here; send the JSON body uncompressed (only Connect and gRPC calls take compressed bodies)`,
      type: "invalid_request_error",
      code: "unsupported_content_encoding",
    });
  });
}
