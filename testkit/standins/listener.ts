/**
 * One HTTP listener on 127.0.0.1 (port 0 by default) with socket tracking, the request log, and
 * the "down" switch shared by every stand-in:
 * - "refused": the listener is closed and every open connection destroyed → ECONNREFUSED;
 *   up() listens again on the same port.
 * - "503": every request gets 503 (responses already streaming continue).
 * - "hang": connections are accepted, requests read, and never answered; up() destroys those
 *   parked connections (the client sees a reset), close() too.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { RequestLog, RequestLogEntry } from "./request-log.js";
import { send } from "./respond.js";

export type DownMode = "refused" | "503" | "hang";

export type Handler<H extends string> = (req: IncomingMessage, res: ServerResponse, entry: RequestLogEntry<H>) => void | Promise<void>;

export class Listener<H extends string = string> {
  readonly server: Server;
  port = 0;
  private readonly sockets = new Set<Socket>();
  private readonly hung = new Set<ServerResponse>();
  private mode: DownMode | undefined;
  private closed = false;

  constructor(
    readonly host: H,
    private readonly log: RequestLog<H>,
    handler: Handler<H>,
  ) {
    this.server = createServer((req, res) => {
      const entry = this.log.begin(this.host, req, res);
      if (this.mode === "hang") {
        this.hung.add(res);
        res.on("close", () => this.hung.delete(res));
        return;
      }
      if (this.mode === "503") {
        send(req, res, 503, { "Content-Type": "text/plain; charset=utf-8", "Retry-After": "1" }, "503 Service Unavailable");
        return;
      }
      Promise.resolve()
        .then(() => handler(req, res, entry))
        .catch((err: unknown) => {
          if (!res.headersSent) send(req, res, 500, { "Content-Type": "text/plain; charset=utf-8" }, `stand-in error: ${String(err)}`);
          else res.destroy();
        });
    });
    this.server.keepAliveTimeout = 5000;
    this.server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    this.server.on("clientError", (_err, s: Socket) => s.destroy());
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get downMode(): DownMode | undefined {
    return this.mode;
  }

  async listen(port = 0): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: Error) => reject(e);
      this.server.once("error", onErr);
      this.server.listen(port, "127.0.0.1", () => {
        this.server.off("error", onErr);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  async down(mode: DownMode = "refused"): Promise<void> {
    if (this.closed) return;
    if (this.mode === "refused" && mode !== "refused") await this.listen(this.port);
    this.mode = mode;
    if (mode === "refused") {
      await this.stopListening();
    }
  }

  async up(): Promise<void> {
    if (this.closed) return;
    const was = this.mode;
    this.mode = undefined;
    for (const res of this.hung) res.socket?.destroy();
    this.hung.clear();
    if (was === "refused") await this.listen(this.port);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.stopListening();
  }

  private async stopListening(): Promise<void> {
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await done;
  }
}
