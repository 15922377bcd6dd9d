import http2 from "node:http2";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { listenOrExplain } from "./listen.js";

export interface GrpcServer {
  port: number;
  url: string;
  /** Stops accepting calls, lets in-flight calls finish (up to graceMs), then closes. */
  close(graceMs?: number): Promise<void>;
}

/**
 * gRPC over h2c (HTTP/2 without TLS). The same handlers also answer the Connect and gRPC-Web
 * protocols here, so any client works on this port.
 */
export async function startGrpcServer(options: {
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  host: string;
  port: number;
}): Promise<GrpcServer> {
  const handler = connectNodeAdapter({
    routes: options.routes,
    interceptors: options.interceptors,
    // Gzip is still accepted, but only large answers are compressed: on loopback and in a rack,
    // compressing every catalog page cost more CPU (~1 ms a call) than the bytes it saved.
    compressMinBytes: 256 * 1024,
  });
  const server = http2.createServer({}, handler);
  const sessions = new Set<http2.Http2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  const port = await listenOrExplain(server, options.host, options.port, { env: "LLMLB_GRPC_PORT", flag: "--grpc-port" });
  const hostForUrl = options.host.includes(":") ? `[${options.host}]` : options.host;
  return {
    port,
    url: `http://${hostForUrl}:${port}`,
    async close(graceMs = 10_000) {
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
