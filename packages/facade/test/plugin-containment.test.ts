/**
 * A source plugin runs in the node's process: a promise it leaves rejected without a handler (a
 * fire-and-forget call) must not end the process, as Node's default would (docs/plugins.md,
 * Containment). A real `llmlb-node serve` in a child process, with such a plugin in its config.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI_ARGS, spawnChildNode, tempDir, type ChildNode } from "../../../testkit/node/index.js";
import { startTinyWorld, TINY_CHAT_ID, type TinyWorld } from "../../../testkit/world/tiny-world.js";

describe("a source plugin that leaves a promise rejected", () => {
  let world: TinyWorld;
  let node: ChildNode;
  const dir = tempDir("llmlb-plugin-");

  beforeAll(async () => {
    world = await startTinyWorld();
    fs.writeFileSync(
      path.join(dir.dir, "careless.mjs"),
      `export default { name: "careless", priority: 5, kinds: ["model"], async locate() {
        Promise.reject(new Error("a rejection nobody awaits"));
        return { type: "not-here", reason: "not here" };
      } };\n`,
    );
    const config = path.join(dir.dir, "config.json");
    fs.writeFileSync(config, JSON.stringify({ sources: [{ module: "./careless.mjs" }, { module: "@llmlb/plugins/huggingface" }] }));
    node = await spawnChildNode({ ...world.env, LLMLB_CONFIG: config });
  });
  afterAll(async () => {
    await node?.stop();
    await world?.close();
    dir.cleanup();
  });

  it("is logged, and the node keeps serving (the model still comes from the next source)", async () => {
    const health = async () => (await fetch(`${node.httpUrl}/v0/health`)).status;
    const pulled = await fetch(`${node.httpUrl}/v0/models/${TINY_CHAT_ID}/pull`, { method: "POST" });
    expect(pulled.status).toBe(202);
    await expect.poll(async () => ((await (await fetch(`${node.httpUrl}/v0/models/${TINY_CHAT_ID}`)).json()) as { state: string }).state, { timeout: 20_000 }).toBe("ready");
    expect(node.process.exitCode).toBeNull();
    expect(await health()).toBe(200);
    const logged = node.logs.find((l) => typeof l.msg === "string" && l.msg.startsWith("a promise was rejected and nothing handled it"));
    expect(logged).toMatchObject({ level: "error" });
    expect(JSON.stringify(logged)).toContain("a rejection nobody awaits");
  });
});

describe("a plugin file outside the node's folder", () => {
  it("that imports @llmlb/runtime is refused at start with the way out", () => {
    const dir = tempDir("llmlb-plugin-");
    try {
      fs.writeFileSync(path.join(dir.dir, "outside.mjs"), `import { definePlugin } from "@llmlb/runtime/plugin";\nexport default definePlugin({ name: "outside", priority: 1, kinds: ["model"], async locate() { return { type: "not-here", reason: "-" }; } });\n`);
      fs.writeFileSync(path.join(dir.dir, "config.json"), JSON.stringify({ sources: [{ module: "./outside.mjs" }] }));
      const run = spawnSync(process.execPath, [...CLI_ARGS, "sources"], {
        env: { ...process.env, LLMLB_HOME: path.join(dir.dir, "home"), LLMLB_CONFIG: path.join(dir.dir, "config.json"), LLMLB_GRPC_PORT: "1", LLMLB_LOG_LEVEL: "silent" },
        encoding: "utf8",
      });
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(/cannot load source plugin "\.\/outside\.mjs": Cannot find package '@llmlb\/runtime'.*install the node's packages there .*or leave the import out/);
    } finally {
      dir.cleanup();
    }
  });
});

describe("a plugin module that is not installed", () => {
  it("stops start-up with one line naming it, without Node's require stack", () => {
    const dir = tempDir("llmlb-plugin-");
    try {
      fs.writeFileSync(path.join(dir.dir, "config.json"), JSON.stringify({ sources: [{ module: "llmlb-source-nowhere" }] }));
      const run = spawnSync(process.execPath, [...CLI_ARGS, "sources"], {
        env: { ...process.env, LLMLB_HOME: path.join(dir.dir, "home"), LLMLB_CONFIG: path.join(dir.dir, "config.json"), LLMLB_GRPC_PORT: "1", LLMLB_LOG_LEVEL: "silent" },
        encoding: "utf8",
      });
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(/cannot load source plugin "llmlb-source-nowhere": Cannot find (module|package) 'llmlb-source-nowhere'/);
      expect(run.stderr.trim().split("\n")).toHaveLength(1);
    } finally {
      dir.cleanup();
    }
  });
});
