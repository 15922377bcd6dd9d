import type { FastifyReply } from "fastify";

export interface SseStream {
  /** Aborted when the client disconnects. */
  signal: AbortSignal;
  /** Sends `data: <json>` (or a raw string such as "[DONE]"); resolves when the socket accepted it. */
  send(data: unknown, event?: string): Promise<void>;
  end(): void;
}

/**
 * Opens a Server-Sent Events response on a raw reply. Writes respect backpressure, a comment line
 * keeps idle connections alive through proxies, and the signal fires when the client goes away.
 * The headers leave with the first event when it is sent in the same turn of the event loop,
 * not as a write (and a wake-up of the client) of their own; node's http corks every later write
 * for the rest of its turn, so a stream's last delta, finish, usage and [DONE] leave together.
 */
export function openSse(reply: FastifyReply, heartbeatMs = 15_000): SseStream {
  const controller = new AbortController();
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  res.cork();
  res.flushHeaders();
  process.nextTick(() => res.uncork());
  const onClose = () => controller.abort();
  res.once("close", onClose);
  // A client that left while the answer was being prepared: its "close" has already been emitted.
  if (res.destroyed) controller.abort();
  const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), heartbeatMs);
  heartbeat.unref();
  let ended = false;
  return {
    signal: controller.signal,
    async send(data, event) {
      if (ended || res.destroyed) return;
      const payload = typeof data === "string" ? data : JSON.stringify(data);
      const ok = res.write(`${event ? `event: ${event}\n` : ""}data: ${payload}\n\n`);
      if (!ok && !res.destroyed) {
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off("drain", done);
            res.off("close", done);
            resolve();
          };
          res.once("drain", done);
          res.once("close", done);
        });
      }
    },
    end() {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      res.off("close", onClose);
      res.end();
    },
  };
}
