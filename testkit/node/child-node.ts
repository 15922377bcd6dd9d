import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import readline from "node:readline";
import { CLI_ARGS } from "./run-cli.js";
import { isolatedEnv, tempDir } from "./test-node.js";

const root = path.resolve(import.meta.dirname, "../..");
const CLI = [...CLI_ARGS, "serve"];

export interface ChildNode {
  process: ChildProcess;
  httpUrl: string;
  home: string;
  /** JSON log lines so far. */
  logs: Array<Record<string, unknown>>;
  /** SIGKILL: the node dies without releasing anything (leases, directory entry). */
  kill9(): Promise<void>;
  /** Stops it if still running and removes its home. */
  stop(): Promise<void>;
}

/** `llmlb-node serve` in a child process on random loopback ports with a temporary home. */
export async function spawnChildNode(env: Record<string, string>, timeoutMs = 30_000): Promise<ChildNode> {
  const { dir, cleanup } = tempDir("llmlb-child-");
  const child = spawn(process.execPath, CLI, {
    cwd: root,
    env: { ...process.env, ...isolatedEnv(dir, { LLMLB_LOG_LEVEL: "info", ...env }), LLMLB_LOG_FORMAT: "json" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const logs: Array<Record<string, unknown>> = [];
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const httpUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the child node did not start within ${timeoutMs} ms: ${JSON.stringify(logs).slice(0, 2000)}`)), timeoutMs);
    readline.createInterface({ input: child.stderr! }).on("line", (text) => {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(line);
      if (line.msg === "HTTP listening" && typeof line.url === "string") {
        clearTimeout(timer);
        resolve(line.url);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the child node exited: ${JSON.stringify(logs).slice(0, 2000)}`));
    });
  });
  const kill9 = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  };
  return {
    process: child,
    httpUrl,
    home: dir,
    logs,
    kill9,
    async stop() {
      await kill9();
      cleanup();
    },
  };
}
