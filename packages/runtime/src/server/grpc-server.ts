import http2 from "node:http2";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { unknownMethod } from "../errors/index.js";
import type { Logger } from "../logging/index.js";
import type { ListenerGuard } from "../security/listener-guard.js";
import { rpcRejection } from "../security/rpc-rejection.js";
import { LISTENER_CLOSE_GRACE_MS, listenOrExplain } from "./listen.js";
import { malformedRequestsAsInvalidArgument } from "./malformed-request-status.js";
import { dropUnwaitableDeadline } from "./unwaitable-deadline.js";

export interface GrpcServer {
  port: number;
  url: string;
  /** Stops accepting calls, lets in-flight calls finish (up to graceMs), then closes. */
  close(graceMs?: number): Promise<void>;
}

type Handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

/**
 * Admits each call (target, Host, key and scope, declared size, stream caps) from its headers alone,
 * then hands it to Connect; a refused call is answered in its own protocol and its body never read.
 * Every call must have sent its whole request within the body timeout.
 */
function guarded(guard: ListenerGuard, next: Handler): Handler {
  return (req, res) => {
    let release = () => {};
    try {
      ({ release } = guard.admit({
        method: req.method,
        target: req.headers[":path"] ?? "",
        host: req.headers[":authority"] ?? req.headers.host,
        authorization: req.headers.authorization,
        origin: req.headers.origin,
        secFetchSite: req.headers["sec-fetch-site"] as string | undefined,
        contentLength: req.headers["content-length"],
        address: req.socket?.remoteAddress ?? "",
      }));
    } catch (err) {
      refuseUnread(req.stream, req.headers["content-type"], err);
      return;
    }
    dropUnwaitableDeadline(req.headers);
    const bodyDeadline = setTimeout(() => req.stream.close(http2.constants.NGHTTP2_CANCEL), guard.limits.bodyTimeoutMs);
    bodyDeadline.unref();
    req.once("end", () => clearTimeout(bodyDeadline));
    req.stream.once("close", () => {
      clearTimeout(bodyDeadline);
      release();
    });
    next(req, res);
  };
}

/**
 * How both listeners read JSON requests (Connect protocol): a key the message does not define is
 * refused with INVALID_ARGUMENT naming it, as protobuf's JSON mapping does by default, instead of
 * connect-es's default of dropping it. A hand-written body with `"text"` for `"content"` must not
 * silently become an empty request. Binary protobuf keeps ignoring unknown fields, as protobuf does.
 */
export const CONNECT_JSON_OPTIONS = { ignoreUnknownFields: false } as const;

/**
 * gRPC over h2c (HTTP/2 without TLS), or over TLS with ALPN "h2" when the guard holds a certificate.
 * The same handlers also answer the Connect and gRPC-Web protocols here, so any client works on
 * this port.
 */
export async function startGrpcServer(options: {
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  guard: ListenerGuard;
  host: string;
  port: number;
  logger: Logger;
}): Promise<GrpcServer> {
  const { guard } = options;
  const handler = malformedRequestsAsInvalidArgument(connectNodeAdapter({
    routes: options.routes,
    interceptors: options.interceptors,
    // Enforced while reading, on the compressed and on the decompressed size.
    readMaxBytes: guard.limits.maxRequestBytes,
    // Gzip is still accepted, but only large answers are compressed: on loopback and in a rack,
    // compressing every catalog page cost more CPU (~1 ms a call) than the bytes it saved.
    compressMinBytes: 256 * 1024,
    jsonOptions: CONNECT_JSON_OPTIONS,
    fallback: answerUnknownMethod,
  }));
  const settings: http2.Settings = { maxConcurrentStreams: guard.limits.maxConcurrentStreams };
  const serverOptions = { settings, maxSessionInvalidFrames: 100, maxSessionRejectedStreams: 100 };
  const tls = guard.tls;
  let server: http2.Http2Server | http2.Http2SecureServer;
  if (tls) {
    const secure = http2.createSecureServer({ ...serverOptions, ...tls.options, ALPNProtocols: ["h2"] }, guarded(guard, handler));
    tls.track(secure);
    server = secure;
  } else {
    server = http2.createServer(serverOptions, guarded(guard, handler));
  }
  const sessions = new Set<http2.Http2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    closeWhenIdle(session, guard.limits.idleTimeoutMs);
    destroyWhenUnresponsive(session, guard.limits, options.logger);
  });
  const port = await listenOrExplain(server, options.host, options.port, { env: "LLMLB_GRPC_PORT", flag: "--grpc-port" });
  const hostForUrl = options.host.includes(":") ? `[${options.host}]` : options.host;
  return {
    port,
    url: `${tls ? "https" : "http"}://${hostForUrl}:${port}`,
    async close(graceMs = LISTENER_CLOSE_GRACE_MS) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.close();
      const timer = setTimeout(() => {
        for (const session of sessions) session.destroy();
      }, graceMs);
      timer.unref();
      await closed;
      clearTimeout(timer);
    },
  };
}

/**
 * A path no route matched: for gRPC and gRPC-Web callers, UNIMPLEMENTED in their protocol (a bare
 * 404 reached them as "Received http2 header with status: 404"); others get Connect's plain 404.
 */
const answerUnknownMethod: NonNullable<Parameters<typeof connectNodeAdapter>[0]["fallback"]> = (req, res) => {
  const contentType = req.headers["content-type"];
  if (!/^application\/grpc/i.test(contentType ?? "")) {
    res.writeHead(404);
    res.end();
    return;
  }
  refuseUnread((res as http2.Http2ServerResponse).stream, contentType, unknownMethod(req.url ?? ""));
};

/**
 * Answers a call with `err` in the protocol the client speaks (a gRPC refusal is "trailers-only":
 * one HEADERS frame that ends the stream), its request body unread: the client may still be sending.
 */
function refuseUnread(stream: http2.ServerHttp2Stream, contentType: string | undefined, err: unknown): void {
  if (stream.destroyed) return;
  const answer = rpcRejection(contentType, err);
  stream.respond({ ":status": answer.status, ...answer.headers }, { endStream: answer.body.length === 0 });
  if (answer.body.length) stream.end(answer.body);
  stream.close(http2.constants.NGHTTP2_NO_ERROR);
}

/** Closes a connection that has had no open stream for idleMs; one with a call in progress stays. */
function closeWhenIdle(session: http2.Http2Session, idleMs: number): void {
  let open = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    timer = setTimeout(() => session.close(), idleMs);
    timer.unref();
  };
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    open++;
    clearTimeout(timer);
    stream.once("close", () => {
      if (--open === 0 && !session.closed) arm();
    });
  });
  session.once("close", () => clearTimeout(timer));
  arm();
}

/** A PING frame: a 9-byte header and 8 bytes of payload. */
const PING_FRAME_BYTES = 17;

/**
 * Pings a connection on which no byte has moved either way for `pingIntervalMs`, and destroys it if,
 * `pingTimeoutMs` later, the ping is unanswered and still nothing has moved: a peer gone without
 * closing, or a connection Node stopped reading (a header block over its limit ends in a GOAWAY
 * that no event reports), would otherwise keep its calls and stream slots for ever. The interval is
 * long (as grpc-go's keepalive time): a ping waits behind the answers already queued for the peer,
 * so on a slow link the tail of a large answer, sitting in the kernel's buffers, must not look dead.
 */
function destroyWhenUnresponsive(session: http2.Http2Session, limits: { pingIntervalMs: number; pingTimeoutMs: number }, logger: Logger): void {
  let last = 0;
  /** Bytes read or written since the last call. */
  const traffic = () => {
    const now = session.destroyed ? last : session.socket.bytesRead + session.socket.bytesWritten;
    const delta = now - last;
    last = now;
    return delta;
  };
  let timer: NodeJS.Timeout | undefined;
  const watchQuiet = () => {
    timer = setTimeout(() => (traffic() > 0 ? watchQuiet() : ping()), limits.pingIntervalMs);
    timer.unref();
  };
  const ping = () => {
    if (session.destroyed || session.closed) return;
    let answered = false;
    if (!session.ping(() => (answered = true))) return watchQuiet();
    timer = setTimeout(() => {
      // More than the ping's own frame has moved: the peer is there.
      if (answered || traffic() > PING_FRAME_BYTES) return watchQuiet();
      logger.warn({ address: session.socket.remoteAddress, timeout_s: limits.pingTimeoutMs / 1000 }, "closed an HTTP/2 connection that answered no ping and moved no byte (LLMLB_PING_INTERVAL, LLMLB_PING_TIMEOUT)");
      session.destroy();
    }, limits.pingTimeoutMs);
    timer.unref();
  };
  traffic();
  watchQuiet();
  session.once("close", () => clearTimeout(timer));
}
