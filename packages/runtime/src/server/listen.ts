import type { Server } from "node:net";
import { LlmlbError } from "../errors/index.js";

/**
 * How long a listener that is closing waits for its open calls and responses (a generation, a
 * blob download) before it drops the connections still open: no client can hold a shutdown longer.
 */
export const LISTENER_CLOSE_GRACE_MS = 10_000;

/** Listens, turning "address in use" into one line naming the port and the setting to change. */
export async function listenOrExplain(server: Server, host: string, port: number, setting: { env: string; flag: string }): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off("listening", onListening);
      if (err.code === "EADDRINUSE") {
        reject(new LlmlbError("INVALID_CONFIG", `port ${port} on ${host} is already in use: set ${setting.env} (or ${setting.flag}) to a free port`, { port: String(port) }));
      } else if (err.code === "EACCES") {
        reject(new LlmlbError("INVALID_CONFIG", `no permission to listen on ${host}:${port}: set ${setting.env} (or ${setting.flag}) to a port above 1023`, { port: String(port) }));
      } else if (err.code === "EADDRNOTAVAIL" || err.code === "ENOTFOUND" || err.code === "EAI_AGAIN") {
        const problem = err.code === "EADDRNOTAVAIL" ? `${host} is not an address of this machine` : `the host name ${host} does not resolve`;
        reject(new LlmlbError("INVALID_CONFIG", `cannot listen on ${host}: ${problem}; set LLMLB_HOST (or --host) to one of its addresses (127.0.0.1 for this machine only, 0.0.0.0 for every interface)`, { setting: "host" }));
      } else {
        reject(err);
      }
    };
    const onListening = () => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(port, host);
  });
  const address = server.address();
  return typeof address === "object" && address ? address.port : port;
}
