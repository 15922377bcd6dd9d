import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sizedModelBytes } from "../../../testkit/gguf/sized-gguf.js";
import { CLI_ARGS as CLI, runCli as cli, spawnChildNode, type ChildNode, type CliRun as Run } from "../../../testkit/node/index.js";
import { startTinyWorld, tinyEntry, TINY_CHAT_ID, type TinyWorld } from "../../../testkit/world/tiny-world.js";


/** 8 MiB of bytes (downloaded, never loaded): slow enough under a throttle to stop the node mid-way. */
const BIG = sizedModelBytes(8 * 1024 * 1024, 7);
const BIG_ID = "tiny-big";
const BIG_REPO = "llmlb-test/big-GGUF";
const BIG_FILE = "big-F32.gguf";


const lastLine = (text: string) => text.trimEnd().split("\n").at(-1);

describe("llmlb-node when the node stops under it", () => {
  let world: TinyWorld;
  let node: ChildNode;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    world = await startTinyWorld({ extraModels: [{ ...tinyEntry(BIG_ID, BIG_FILE, BIG, ["text-generation"]), repo: BIG_REPO }] });
    await world.hf.addRepo(BIG_REPO, { files: { [BIG_FILE]: BIG } });
    node = await spawnChildNode(world.env);
    const grpcUrl = node.logs.find((l) => typeof l.msg === "string" && l.msg.startsWith("gRPC listening"))?.url;
    const grpcPort = new URL(String(grpcUrl)).port;
    env = { ...world.env, LLMLB_HOME: node.home, LLMLB_HOST: "127.0.0.1", LLMLB_GRPC_PORT: grpcPort, LLMLB_LOG_LEVEL: "silent" };
  });
  afterAll(async () => {
    await node?.stop();
    await world?.close();
  });

  it("a pull cut off by the node's shutdown says the connection was lost and that the same pull resumes (exit 1)", async () => {
    // Slow enough that the 10 s the node gives calls in flight when it stops do not finish it.
    world.hf.throttle(128 * 1024, { path: BIG_FILE });
    let stopped = false;
    const exited = new Promise((resolve) => node.process.once("exit", resolve));
    const run = await cli(["pull", BIG_ID], env, {
      onStderr: (text) => {
        if (!stopped && /^progress [1-9]\d%/m.test(text)) {
          stopped = true;
          node.process.kill("SIGTERM");
        }
      },
    });
    world.hf.throttle(null);
    await exited;
    expect(stopped).toBe(true);
    expect(run.code).toBe(1);
    expect(lastLine(run.stderr)).toBe("llmlb-node: the connection to the node was lost (the node stopped); run the same pull again to resume the download (NODE_NOT_RUNNING)");
    expect(run.stdout).toBe("");
  });

  it("rm of a partial download says the bytes it freed; with nothing on disk, that there was nothing to delete", async () => {
    // The node is gone: rm works on its store in this process.
    const partial = path.join(node.home, "models", ".partial");
    expect(fs.readdirSync(partial).length).toBeGreaterThan(0);
    const rm = await cli(["rm", BIG_ID], env);
    expect(rm.code).toBe(0);
    expect(rm.stdout).toMatch(new RegExp(`^deleted ${BIG_ID} \\(\\d+(\\.\\d)? (KiB|MiB) freed\\)\\n$`));
    expect(fs.readdirSync(partial)).toEqual([]);

    const again = await cli(["rm", BIG_ID], env);
    expect([again.code, again.stdout]).toEqual([0, `nothing to delete: ${BIG_ID} has no files on disk\n`]);
    expect(JSON.parse((await cli(["rm", BIG_ID, "--json"], env)).stdout)).toEqual({ id: BIG_ID, freed_bytes: 0 });
  });
});

describe("llmlb-node chat when its answer is cut", () => {
  let world: TinyWorld;
  let node: ChildNode;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    world = await startTinyWorld();
    node = await spawnChildNode(world.env);
    const grpcUrl = node.logs.find((l) => typeof l.msg === "string" && l.msg.startsWith("gRPC listening"))?.url;
    env = { ...world.env, LLMLB_HOME: node.home, LLMLB_HOST: "127.0.0.1", LLMLB_GRPC_PORT: new URL(String(grpcUrl)).port, LLMLB_LOG_LEVEL: "silent" };
  });
  afterAll(async () => {
    await node?.stop();
    await world?.close();
  });

  /** A piped chat of one long answer; `cut` runs once the first words of the answer are out. */
  const chatCut = (cut: (child: ChildProcess) => void) =>
    new Promise<Run>((resolve) => {
      const child = spawn(process.execPath, [...CLI, "chat", TINY_CHAT_ID, "--max-tokens", "1000", "--temperature", "1", "--seed", "3"], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      let done = false;
      child.stdout.on("data", (d: Buffer) => {
        stdout += d.toString();
        if (!done && stdout.length > 0) {
          done = true;
          cut(child);
        }
      });
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.stdin.end("Tell me a long story\nAnd another one\n");
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });

  it("Ctrl-C stops a piped chat's answer and ends the chat (exit 130)", async () => {
    const run = await chatCut((child) => child.kill("SIGINT"));
    expect(run.code).toBe(130);
    expect(run.stderr).not.toMatch(/llmlb-node:/);
    expect(run.stdout.endsWith("\n")).toBe(true);
  });

  it("a node that dies under an answer is named, not a transport error (exit 1)", async () => {
    const run = await chatCut(() => node.process.kill("SIGKILL"));
    expect(run.code).toBe(1);
    expect(lastLine(run.stderr)).toBe("llmlb-node: the connection to the node was lost (the node stopped); the answer was cut off; start the node and chat again (NODE_NOT_RUNNING)");
  });
});
