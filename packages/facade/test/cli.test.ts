import { spawn } from "node:child_process";
import { sizedModelBytes } from "../../../testkit/gguf/sized-gguf.js";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI_ARGS as CLI, runCli as cli, startTestNode, tempDir, type CliRun as Run, type TestNode } from "../../../testkit/node/index.js";
import { createProgram } from "../src/index.js";
import { parsePrometheusText } from "../../../testkit/metrics/prometheus-text.js";
import { startTinyWorld, tinyChat, tinyEntry, TINY_CHAT_FILE, TINY_CHAT_ID, TINY_REPO, type TinyWorld } from "../../../testkit/world/tiny-world.js";


/** 8 MiB of bytes (downloaded, never loaded): slow enough under a throttle to interrupt. */
const BIG = sizedModelBytes(8 * 1024 * 1024, 7);
const BIG_ID = "tiny-big";
const BIG_REPO = "llmlb-test/big-GGUF";
const BIG_FILE = "big-F32.gguf";


describe("llmlb-node CLI", () => {
  let world: TinyWorld;
  let node: TestNode;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    world = await startTinyWorld({ extraModels: [{ ...tinyEntry(BIG_ID, BIG_FILE, BIG, ["text-generation"]), repo: BIG_REPO }] });
    await world.hf.addRepo(BIG_REPO, { files: { [BIG_FILE]: BIG } });
    node = await startTestNode(world.env);
    env = { ...world.env, LLMLB_HOME: node.home, LLMLB_HOST: "127.0.0.1", LLMLB_GRPC_PORT: String(node.grpc.port), LLMLB_LOG_LEVEL: "silent" };
  });
  afterAll(async () => {
    await node?.stop();
    await world?.close();
  });

  it("has --help with an example for every command", async () => {
    const program = createProgram();
    const commands = program.commands.map((c) => c.name()).filter((name) => name !== "help");
    expect(commands).toEqual(expect.arrayContaining(["serve", "pull", "ls", "info", "rm", "register", "sources", "chat", "config", "ps", "load", "unload"]));
    for (const command of commands) {
      let out = "";
      const fresh = createProgram();
      fresh.configureOutput({ writeOut: (s) => (out += s) });
      for (const sub of fresh.commands) sub.configureOutput({ writeOut: (s) => (out += s) });
      await expect(fresh.parseAsync(["node", "llmlb-node", command, "--help"])).rejects.toMatchObject({ code: "commander.helpDisplayed" });
      expect(out, command).toContain(`Usage: llmlb-node ${command}`);
      expect(out, command).toMatch(/Examples?:\n {2}llmlb-node /);
      // The setting flags are global and hidden: each command says they exist.
      expect(out, command).toContain("--grpc-port");
    }
  });

  it("answers an unknown command with exit 2 and the help", async () => {
    const run = await cli(["frobnicate"], env);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("unknown command 'frobnicate'");
    expect(run.stderr).toContain("Usage: llmlb-node");
  });

  it("registers with --capability, repeatable, before or after the repo", async () => {
    const run = await cli(["register", "--capability", "embeddings", TINY_REPO, "--file", TINY_CHAT_FILE, "--id", "cli-told", "--capability", "rerank", "--json"], env);
    expect(run.code, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as { model: { capabilities: string[] } }).model.capabilities).toEqual(["embeddings", "rerank"]);
  });

  it("takes a flag over the environment over the config file", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = path.join(dir, "config.json");
      fs.writeFileSync(file, JSON.stringify({ grpcPort: 7003, httpPort: 7004, parallelism: 3 }));
      const run = await cli(["config", "--json", "--grpc-port", "7001", "--config", file], { LLMLB_HOME: dir, LLMLB_GRPC_PORT: "7002", LLMLB_HTTP_PORT: "7005" });
      expect(run.code).toBe(0);
      const config = JSON.parse(run.stdout) as Record<string, { value: unknown; source: string }>;
      expect(config.grpcPort).toEqual({ value: 7001, source: "flag --grpc-port" });
      expect(config.httpPort).toEqual({ value: 7005, source: "env LLMLB_HTTP_PORT" });
      expect(config.parallelism).toEqual({ value: 3, source: `file ${file}` });
      expect(config.queueSize).toEqual({ value: 64, source: "default" });
      // The table shows durations, sizes and "auto" as they are written, not in ms, bytes and 0.
      const table = await cli(["config"], { LLMLB_HOME: dir, LLMLB_KEEP_ALIVE: "10m" });
      expect(table.code).toBe(0);
      const row = (key: string) => table.stdout.split("\n").find((l) => l.startsWith(`${key} `))?.replace(/\s+/g, " ").trim();
      expect(row("keepAlive")).toBe("keepAlive 10m env LLMLB_KEEP_ALIVE");
      expect(row("contextSize")).toBe("contextSize auto default");
      expect(row("runnerHangTimeout")).toBe("runnerHangTimeout 5s default");
      expect(row("diskReserve")).toBe("diskReserve 512.0 MiB default");
    } finally {
      cleanup();
    }
  });

  it("pull prints plain progress lines when piped, then ls --json lists the model", async () => {
    world.hf.throttle(8 * 1024 * 1024, { path: BIG_FILE });
    const run = await cli(["pull", BIG_ID], env);
    world.hf.throttle(null);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/^progress \d+% .+\/s .+ left$/m);
    expect(run.stderr).not.toContain("\u001b[");
    expect(run.stdout).toMatch(new RegExp(`^${BIG_ID} ready at ${node.home}/models/.+ \\(from huggingface, 8\\.0 MiB\\)$`, "m"));

    const ls = await cli(["ls", "--json"], env);
    expect(ls.code).toBe(0);
    const models = JSON.parse(ls.stdout) as Array<{ id: string; state: string; local: { path: string } | null }>;
    expect(models.find((m) => m.id === BIG_ID)).toMatchObject({ state: "ready" });
    expect(models.find((m) => m.id === BIG_ID)!.local!.path.startsWith(node.home)).toBe(true);
    expect(models.find((m) => m.id === TINY_CHAT_ID)).toBeUndefined();
    // The hub proved the file's sha256 before the download: ls says it was verified.
    expect(models.find((m) => m.id === BIG_ID)).toMatchObject({ local: { verified: true } });
    const table = await cli(["ls"], env);
    expect(table.stdout).toMatch(/^ID\s+STATE\s+SIZE\s+SOURCE\s+VERIFIED\s+PATH/m);
    expect(table.stdout).toMatch(new RegExp(`^${BIG_ID}\\s+ready\\s+8\\.0 MiB\\s+huggingface\\s+yes\\s+`, "m"));
    // --state takes any case and the REST alias "downloaded"; an unknown state is a usage error listing them.
    for (const state of ["READY", "downloaded"]) {
      const filtered = JSON.parse((await cli(["ls", "--state", state, "--json"], env)).stdout) as Array<{ id: string }>;
      expect(filtered.map((m) => m.id)).toContain(BIG_ID);
    }
    expect(JSON.parse((await cli(["ls", "--state", "failed", "--json"], env)).stdout)).toEqual([]);
    const bogus = await cli(["ls", "--state", "bogus"], env);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toMatch(/option '--state <state>' argument 'bogus' is invalid\. expected one of available, downloading, ready, downloaded, loaded, failed, unsupported/);
  });

  it("pull draws a progress bar on a terminal", async () => {
    await cli(["rm", BIG_ID], env);
    world.hf.throttle(8 * 1024 * 1024, { path: BIG_FILE });
    const command = [process.execPath, ...CLI, "pull", BIG_ID].map((a) => `'${a}'`).join(" ");
    const run = await new Promise<Run>((resolve) => {
      const child = spawn("script", ["-qefc", command, "/dev/null"], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.on("close", (code) => resolve({ code, stdout, stderr: "" }));
    });
    world.hf.throttle(null);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/\|[█░]+\| \d+% /);
    expect(run.stdout).toContain("100%");
    expect(run.stdout).toMatch(/left/);
  });

  it("Ctrl-C cancels a pull (or a chat downloading its model), and the next pull resumes where it stopped", async () => {
    await cli(["rm", BIG_ID], env);
    world.hf.clearLog();
    world.hf.throttle(2 * 1024 * 1024, { path: BIG_FILE });
    /** Runs the command and presses Ctrl-C once its download shows 30% or more. */
    const interruptedAtProgress = async (args: string[]) => {
      let signalled = false;
      const run = await cli(args, env, {
        onStderr: (text, child) => {
          if (!signalled && /^progress [3-9]\d%/m.test(text)) {
            signalled = true;
            child.kill("SIGINT");
          }
        },
      });
      return { ...run, signalled };
    };
    const interrupted = await interruptedAtProgress(["pull", BIG_ID]);
    expect(interrupted.signalled).toBe(true);
    expect(interrupted.code).toBe(130);
    expect(interrupted.stderr).toContain("cancelled; the partial download is kept: run the same pull again to resume it");
    const { model } = await node.clients.catalog.getModel({ modelId: BIG_ID });
    expect(model?.local).toBeUndefined();

    // A chat that has to download the model first cancels the same way, naming itself.
    const chat = await interruptedAtProgress(["chat", BIG_ID]);
    expect(chat.signalled).toBe(true);
    expect(chat.code).toBe(130);
    expect(chat.stderr).toContain("cancelled; the partial download is kept: run the same chat again to resume it");

    world.hf.throttle(null);
    const resumed = await cli(["pull", BIG_ID], env);
    expect(resumed.code).toBe(0);
    const served = world.hf.bytesServed(BIG_REPO, BIG_FILE);
    expect(served).toBeGreaterThanOrEqual(BIG.length);
    expect(served).toBeLessThan(BIG.length * 1.1);
  });

  it("rm deletes the files; info and sources answer as JSON", async () => {
    const info = await cli(["info", BIG_ID, "--json"], env);
    expect(JSON.parse(info.stdout)).toMatchObject({ id: BIG_ID, state: "ready" });
    const sources = await cli(["sources", "--json"], env);
    expect((JSON.parse(sources.stdout) as Array<{ name: string }>).map((s) => s.name)).toEqual(["local", "huggingface", "github-adapter", "router-proxy"]);
    const rm = await cli(["rm", BIG_ID], env);
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout).toContain(`deleted ${BIG_ID} (8.0 MiB freed)`);
    expect(fs.existsSync(path.join(node.home, "models", BIG_ID))).toBe(false);
  });

  it("chat checks the model before it reads a line: a mistyped id fails at once", async () => {
    const mistyped = await cli(["chat", "tiny-chatt"], env);
    expect(mistyped.code).toBe(1);
    expect(mistyped.stderr).toMatch(/^llmlb-node: model tiny-chatt is neither in supported_models\.json nor registered; .+ \(MODEL_NOT_SUPPORTED\)\n$/);
  });

  it("chat downloads a model not on disk with its progress shown, then streams an answer to piped input", async () => {
    expect((await node.clients.catalog.getModel({ modelId: TINY_CHAT_ID })).model?.local).toBeUndefined();
    const child = spawn(process.execPath, [...CLI, "chat", TINY_CHAT_ID, "--max-tokens", "6", "--temperature", "0"], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdin.end("Hello\n");
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(code).toBe(0);
    expect(stderr).toMatch(/^progress 100% .+ left$/m);
    expect(stdout.trim().length).toBeGreaterThan(0);
  });

  it("/metrics parses as Prometheus text and counts the downloads", async () => {
    const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
    const families = parsePrometheusText(text);
    const sample = (family: string, name: string, labels: Record<string, string>) =>
      families.get(family)?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    // BIG three times (two whole pulls, then a pull and a chat cancelled and the resume) and tiny-chat
    // once, each byte counted once: a resume's bytes already on disk are not counted again. (The
    // bytes a cancelled run moved after its last progress report, at most a quarter second's, are not counted.)
    const hubBytes = sample("llmlb_download_bytes_total", "llmlb_download_bytes_total", { source: "huggingface" })!;
    expect(hubBytes).toBeGreaterThan(2.8 * BIG.length);
    expect(hubBytes).toBeLessThanOrEqual(3 * BIG.length + tinyChat.length);
    expect(sample("llmlb_resolutions_total", "llmlb_resolutions_total", { source: "huggingface" })).toBeGreaterThanOrEqual(2);
    expect(families.get("llmlb_download_duration_seconds")?.type).toBe("histogram");
    expect(sample("llmlb_download_duration_seconds", "llmlb_download_duration_seconds_count", { source: "huggingface" })).toBeGreaterThanOrEqual(2);
    expect(sample("llmlb_inference_tokens_total", "llmlb_inference_tokens_total", { model: TINY_CHAT_ID, kind: "completion" })).toBeGreaterThanOrEqual(6);
    expect(sample("llmlb_request_duration_seconds", "llmlb_request_duration_seconds_count", { method: "ResolverService/Resolve", code: "ok" })).toBeGreaterThanOrEqual(1);
    expect(sample("llmlb_loaded_models", "llmlb_loaded_models", {})).toBe(1);
  });

  it("ps lists what the node holds; unload frees it; load brings it back with its keep-alive", async () => {
    const ps = await cli(["ps"], env);
    expect(ps.code).toBe(0);
    expect(ps.stdout).toMatch(/^ID\s+MEMORY\s+CONTEXT\s+SLOTS\s+QUEUED\s+EXPIRES$/m);
    expect(ps.stdout).toMatch(new RegExp(`^${TINY_CHAT_ID}\\s+\\S+ \\S+\\s+1024\\s+0/4\\s+0\\s+\\d+m\\d+s$`, "m"));
    expect(ps.stdout).toMatch(/ of .+ budget in use$/m);

    const unload = await cli(["unload", TINY_CHAT_ID], env);
    expect(unload.stdout).toBe(`unloaded ${TINY_CHAT_ID}\n`);
    const again = await cli(["unload", TINY_CHAT_ID], env);
    expect([again.code, again.stdout]).toEqual([0, `${TINY_CHAT_ID} was not loaded\n`]);
    const mistyped = await cli(["unload", "tiny-chatt"], env);
    expect(mistyped.code).toBe(1);
    expect(mistyped.stderr).toMatch(/^llmlb-node: model tiny-chatt is neither in supported_models\.json nor registered; .+ \(MODEL_NOT_SUPPORTED\)\n$/);
    expect(JSON.parse((await cli(["ps", "--json"], env)).stdout)).toMatchObject({ models: [] });
    expect((await cli(["ps"], env)).stdout).toMatch(/^no model is loaded \(memory budget \S+ \S+\); models load on their first request or with llmlb-node load <id>\n$/);

    const load = await cli(["load", TINY_CHAT_ID, "--keep-alive", "-1"], env);
    expect(load.code).toBe(0);
    expect(load.stdout).toMatch(new RegExp(`^loaded ${TINY_CHAT_ID} \\(.+, context 1024 tokens, 4 slots\\)$`, "m"));
    const after = JSON.parse((await cli(["ps", "--json"], env)).stdout) as { models: Array<{ id: string; expires_at: string | null }> };
    expect(after.models).toEqual([expect.objectContaining({ id: TINY_CHAT_ID, expires_at: null })]);
  });
});

describe("llmlb-node without a running node", () => {
  it("works directly on the store", async () => {
    const world = await startTinyWorld();
    const { dir, cleanup } = tempDir();
    try {
      const env = { ...world.env, LLMLB_HOME: dir, LLMLB_HOST: "127.0.0.1", LLMLB_GRPC_PORT: "9", LLMLB_LOG_LEVEL: "silent" };
      const pull = await cli(["pull", TINY_CHAT_ID, "--json"], env);
      expect(pull.code).toBe(0);
      expect(JSON.parse(pull.stdout)).toMatchObject({ id: TINY_CHAT_ID, source: "huggingface" });
      const ls = await cli(["ls", "--json"], env);
      expect((JSON.parse(ls.stdout) as Array<{ id: string; state: string }>).map((m) => [m.id, m.state])).toEqual([[TINY_CHAT_ID, "ready"]]);
      expect(fs.existsSync(path.join(dir, "models", TINY_CHAT_ID))).toBe(true);
      const ps = await cli(["ps"], env);
      expect(ps.code).toBe(1);
      expect(ps.stderr).toBe("llmlb-node: no node answers at http://127.0.0.1:9; start one with llmlb-node serve (NODE_NOT_RUNNING)\n");
    } finally {
      cleanup();
      await world.close();
    }
  });
});

describe("serve logs", () => {
  it("redact a token carried in a URL", async () => {
    const { dir, cleanup } = tempDir();
    try {
      let logs = "";
      const child = spawn(process.execPath, [...CLI, "serve"], {
        env: {
          ...process.env, LLMLB_HOME: dir, LLMLB_HOST: "127.0.0.1", LLMLB_GRPC_PORT: "0", LLMLB_HTTP_PORT: "0",
          LLMLB_LOG_FORMAT: "json", LLMLB_PREFETCH: "true", LLMLB_ROUTER_URL: "http://127.0.0.1:9/?token=rt_secret_123",
        },
        stdio: ["ignore", "ignore", "pipe"],
      });
      child.stderr.on("data", (d: Buffer) => (logs += d.toString()));
      await expect.poll(() => logs.includes("router unreachable"), { timeout: 20_000 }).toBe(true);
      child.kill("SIGTERM");
      await new Promise((resolve) => child.on("close", resolve));
      expect(logs).not.toContain("rt_secret_123");
      const line = logs.split("\n").find((l) => l.includes("router unreachable"))!;
      expect(JSON.parse(line).router).toBe("http://127.0.0.1:9/?token=***");
    } finally {
      cleanup();
    }
  });
});
