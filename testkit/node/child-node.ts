import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { CLI_ARGS } from "./run-cli.js";
import { isolatedEnv, tempDir } from "./test-node.js";

const root = path.resolve(import.meta.dirname, "../..");
const CLI = [...CLI_ARGS, "serve"];

export interface ChildNode {
  process: ChildProcess;
  httpUrl: string;
  grpcUrl: string;
  home: string;
  /** JSON log lines so far. */
  logs: Array<Record<string, unknown>>;
  /** Its stderr so far, as written. */
  stderr(): string;
  /** Resident memory of the node process, from /proc (bytes). */
  rss(): number;
  /** SIGTERM, as an operator stops it: resolves with its exit code (SIGKILL after 15 s). */
  terminate(): Promise<number | null>;
  /** SIGKILL: the node dies without releasing anything (leases, directory entry). */
  kill9(): Promise<void>;
  /** Stops it if still running and removes its home. */
  stop(): Promise<void>;
}

/**
 * `llmlb-node serve` in a child process (its memory and its signals are its own) on random loopback
 * ports with a temporary home, info-level JSON logs on stderr.
 */
export async function spawnChildNode(
  env: Record<string, string>,
  timeoutMs = 30_000,
  /** Wraps the node's command line (e.g. a small disk of its own mounted over `home`: testkit/node/small-disk.ts). */
  launcher: (argv: string[], home: string) => string[] = (argv) => argv,
): Promise<ChildNode> {
  const { dir, cleanup } = tempDir("llmlb-child-");
  const [command, ...args] = launcher([process.execPath, ...CLI], dir);
  const child = spawn(command!, args, {
    cwd: root,
    env: { ...process.env, ...isolatedEnv(dir, { LLMLB_LOG_LEVEL: "info", ...env }), LLMLB_LOG_FORMAT: "json" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const urls: { http?: string; grpc?: string } = {};
  const { http: httpUrl, grpc: grpcUrl } = await new Promise<Required<typeof urls>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the child node did not start within ${timeoutMs} ms: ${JSON.stringify(logs).slice(0, 2000)}`)), timeoutMs);
    readline.createInterface({ input: child.stderr! }).on("line", (text) => {
      stderr += `${text}\n`;
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(line);
      if (typeof line.url !== "string") return;
      if (line.msg === "HTTP listening" || line.msg === "HTTPS listening") urls.http = line.url;
      if (typeof line.msg === "string" && line.msg.startsWith("gRPC listening")) urls.grpc = line.url;
      if (urls.http !== undefined && urls.grpc !== undefined) {
        clearTimeout(timer);
        resolve({ http: urls.http, grpc: urls.grpc });
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the child node exited: ${JSON.stringify(logs).slice(0, 2000)}`));
    });
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  const kill9 = async () => {
    if (running()) child.kill("SIGKILL");
    await exited;
  };
  return {
    process: child,
    httpUrl,
    grpcUrl,
    home: dir,
    logs,
    stderr: () => stderr,
    rss() {
      const status = fs.readFileSync(`/proc/${child.pid}/status`, "utf8");
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
    },
    async terminate() {
      if (running()) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
    kill9,
    async stop() {
      await kill9();
      cleanup();
    },
  };
}
