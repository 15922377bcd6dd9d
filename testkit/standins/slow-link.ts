import net from "node:net";
import type { AddressInfo } from "node:net";

/**
 * A slow network link in front of a real server on 127.0.0.1: a TCP relay that paces what the
 * server sends back at a rate per connection (setRate; full speed until then; requests always
 * pass at full speed). When the
 * server side resets or closes, the client side is reset too, as over a real link. The target can
 * be set after the link listens, so a node can advertise the link's URL before it starts.
 */
export interface SlowLink {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Where connections are relayed to (http://host:port of the server). */
  setTarget(url: string): void;
  /** Paces every connection's responses at this many bytes per second from now on; null: full speed. */
  setRate(bytesPerSecond: number | null): void;
  /** Response bytes relayed so far, over all connections. */
  readonly bytesRelayed: number;
  close(): Promise<void>;
}

export async function startSlowLink(): Promise<SlowLink> {
  let target: URL | undefined;
  let rate: number | null = null;
  let relayed = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (!target) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: target.hostname, port: Number(target.port) });
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    upstream.on("data", (chunk: Buffer) => {
      client.write(chunk);
      relayed += chunk.length;
      if (rate === null) return;
      upstream.pause();
      setTimeout(() => upstream.resume(), (chunk.length / rate) * 1000).unref();
    });
    upstream.on("end", () => client.end());
    upstream.on("error", () => client.resetAndDestroy());
    upstream.on("close", () => {
      sockets.delete(upstream);
      if (!client.writableEnded) client.resetAndDestroy();
    });
    client.on("error", () => upstream.destroy());
    client.on("close", () => {
      sockets.delete(client);
      upstream.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    setTarget(url) {
      target = new URL(url);
    },
    setRate(bytesPerSecond) {
      rate = bytesPerSecond;
    },
    get bytesRelayed() {
      return relayed;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
