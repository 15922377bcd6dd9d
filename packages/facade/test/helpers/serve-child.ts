import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { isolatedEnv } from "../../../../testkit/node/index.js";

const root = path.resolve(import.meta.dirname, "../../../..");

export interface ServeChild {
  child: ChildProcess;
  grpcUrl: string;
  httpUrl: string;
  stderr(): string;
  /** Resident memory of the node process, from /proc (bytes). */
  rss(): number;
  stop(): Promise<void>;
}

/** `llmlb-node serve` in its own process (so its memory and its signals are its own), JSON logs on stderr. */
export async function startServeChild(home: string, env: Record<string, string>): Promise<ServeChild> {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", path.join(root, "packages/facade/src/cli.ts"), "serve"], {
    env: { ...process.env, ...isolatedEnv(home, { LLMLB_LOG_LEVEL: "info", LLMLB_LOG_FORMAT: "json", ...env }) },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const urls = await new Promise<{ grpcUrl: string; httpUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listeners within 60 s:\n${stderr}`)), 60_000);
    child.once("exit", (code) => reject(new Error(`the node exited (${code}):\n${stderr}`)));
    child.stderr!.on("data", () => {
      const grpc = /"url":"(https?:\/\/[^"]+)","msg":"gRPC listening/.exec(stderr);
      const http = /"url":"(https?:\/\/[^"]+)","msg":"HTTPS? listening"/.exec(stderr);
      if (grpc && http) {
        clearTimeout(timer);
        resolve({ grpcUrl: grpc[1]!, httpUrl: http[1]! });
      }
    });
  });
  return {
    child,
    ...urls,
    stderr: () => stderr,
    rss() {
      const status = fs.readFileSync(`/proc/${child.pid}/status`, "utf8");
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
