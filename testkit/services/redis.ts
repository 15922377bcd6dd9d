import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort, waitForPort } from "./free-port.js";

export const REDIS_SERVER = "/usr/bin/redis-server";

/** Why Redis tests cannot run here, or undefined when they can (CI installs Debian's redis-server). */
export function redisMissing(): string | undefined {
  return fs.existsSync(REDIS_SERVER) ? undefined : `${REDIS_SERVER} is missing: apt-get install redis-server (.ci/run installs it)`;
}

export interface RedisServer {
  url: string;
  port: number;
  /** Stops the server (SIGKILL: as if the machine went away); start() brings it back on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good and removes its directory. */
  close(): Promise<void>;
}

/** A throwaway redis-server on 127.0.0.1, a free port and a temp dir, without persistence. */
export async function startRedis(): Promise<RedisServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "llmlb-redis-"));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(REDIS_SERVER, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], {
      stdio: "ignore",
    });
    await waitForPort(port, 10_000);
  };
  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once("exit", () => resolve());
      running.kill("SIGKILL");
    });
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    start,
    async close() {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
