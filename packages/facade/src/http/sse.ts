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
 * What is written in one turn of the event loop leaves as one write: the headers with the first
 * event, and a stream's last delta, finish, usage and [DONE] together (each write is a syscall
 * and wakes the client once more).
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
  let corked = false;
  const uncork = () => {
    corked = false;
    res.uncork();
  };
  const corkThisTurn = () => {
    if (corked) return;
    corked = true;
    res.cork();
    process.nextTick(uncork);
  };
  corkThisTurn();
  res.flushHeaders(); // with the first event if it is sent in this turn, else on their own
  const onClose = () => controller.abort();
  res.once("close", onClose);
  const heartbeat = setInterval(() => {
    corkThisTurn();
    res.write(": keep-alive\n\n");
  }, heartbeatMs);
  heartbeat.unref();
  let ended = false;
  return {
    signal: controller.signal,
    async send(data, event) {
      if (ended || res.destroyed) return;
      const payload = typeof data === "string" ? data : JSON.stringify(data);
      corkThisTurn();
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
