import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig, silentLogger, type NodeConfig } from "@llmlb/runtime";
import { loggerFor, startNode, type RunningNode } from "@llmlb/facade";

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = "llmlb-test-"): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Environment for a node that can reach nothing but loopback stand-ins. */
export function isolatedEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    LLMLB_HOME: home,
    LLMLB_HOST: "127.0.0.1",
    LLMLB_GRPC_PORT: "0",
    LLMLB_HTTP_PORT: "0",
    LLMLB_LOG_LEVEL: "silent",
    LLMLB_GPU: "cpu",
    LLMLB_THREADS: "1",
    HF_ENDPOINT: "http://127.0.0.1:9",
    LLMLB_GITHUB_URL: "http://127.0.0.1:9",
    ...extra,
  };
}

export interface TestNode extends RunningNode {
  home: string;
  config: NodeConfig;
  grpcUrl: string;
  httpUrl: string;
  stop(): Promise<void>;
}

/**
 * Starts a whole node in this process on random loopback ports with a temporary home. With
 * `logTo`, the node's real logger (level and format from env) writes there instead of nowhere.
 */
export async function startTestNode(env: Record<string, string> = {}, flags: Record<string, unknown> = {}, options: { logTo?: NodeJS.WritableStream } = {}): Promise<TestNode> {
  const { dir, cleanup } = tempDir("llmlb-home-");
  const config = loadConfig({ env: isolatedEnv(dir, env), flags });
  const node = await startNode(config, options.logTo ? loggerFor(config, { destination: options.logTo }) : silentLogger());
  return {
    ...node,
    home: dir,
    config,
    grpcUrl: node.grpc.url,
    httpUrl: node.http.url,
    async stop() {
      await node.close();
      cleanup();
    },
  };
}
