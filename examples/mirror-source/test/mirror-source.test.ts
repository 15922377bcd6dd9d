import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArtifactKind } from "@llmlb/runtime/gen/llmlb/node/v1/model_pb";
import { startTestNode, tempDir, type TestNode } from "../../../testkit/node/index.js";
import { startTinyWorld, TINY_CHAT_FILE, TINY_CHAT_ID, TINY_REPO, tinyChat, type TinyWorld } from "../../../testkit/world/tiny-world.js";

const PLUGIN = path.resolve(import.meta.dirname, "../src/index.js");

/** Starts a node whose only configuration is a config.json listing the sources. */
async function nodeWithSources(world: TinyWorld, sources: unknown[]): Promise<TestNode & { cleanupConfig: () => void }> {
  const { dir, cleanup } = tempDir("llmlb-config-");
  const configFile = path.join(dir, "config.json");
  fs.writeFileSync(configFile, JSON.stringify({ sources }, null, 2));
  const node = await startTestNode({ ...world.env, LLMLB_CONFIG: configFile });
  return { ...node, cleanupConfig: cleanup };
}

async function resolveModel(node: TestNode, id: string) {
  const events = [];
  for await (const res of node.clients.resolver.resolve({ target: { case: "modelId", value: id } })) events.push(res.event);
  return events;
}

describe("the example mirror-source plugin, loaded from config.json with no code change", () => {
  let world: TinyWorld;
  let mirror: { dir: string; cleanup: () => void };
  const nodes: Array<TestNode & { cleanupConfig: () => void }> = [];

  beforeAll(async () => {
    world = await startTinyWorld();
    mirror = tempDir("llmlb-mirror-");
    fs.mkdirSync(path.join(mirror.dir, TINY_REPO), { recursive: true });
    fs.writeFileSync(path.join(mirror.dir, TINY_REPO, TINY_CHAT_FILE), tinyChat);
  });
  afterAll(async () => {
    for (const node of nodes) {
      await node.stop();
      node.cleanupConfig();
    }
    await world?.close();
    mirror?.cleanup();
  });

  it("is tried in priority order and supplies the model in place, before Hugging Face", async () => {
    const node = await nodeWithSources(world, [
      { module: "@llmlb/plugins/local" },
      { module: "@llmlb/plugins/huggingface" },
      { module: PLUGIN, priority: 15, options: { root: mirror.dir } },
    ]);
    nodes.push(node);
    const { sources } = await node.clients.resolver.listSources({});
    expect(sources.map((s) => [s.name, s.priority, s.enabled])).toEqual([
      ["local", 10, true],
      ["mirror", 15, true],
      ["huggingface", 20, true],
    ]);
    expect(sources.find((s) => s.name === "mirror")?.kinds).toEqual([ArtifactKind.MODEL, ArtifactKind.ADAPTER]);

    world.hf.clearLog();
    const events = await resolveModel(node, TINY_CHAT_ID);
    expect(events.filter((e) => e.case === "sourceTried").map((e) => e.value.source)).toEqual(["local", "mirror"]);
    const done = events.find((e) => e.case === "done")!.value as { source: string; path: string };
    expect(done.source).toBe("mirror");
    expect(done.path).toBe(path.join(mirror.dir, TINY_REPO, TINY_CHAT_FILE));
    expect(world.hf.requests).toHaveLength(0);

    let text = "";
    for await (const res of node.clients.inference.chat({ modelId: TINY_CHAT_ID, messages: [{ role: "user", content: "hi" }], maxTokens: 4, temperature: 0 })) text += res.delta;
    expect(text.length).toBeGreaterThan(0);
  });

  it("loses to a source with a lower priority number", async () => {
    const node = await nodeWithSources(world, [
      { module: "@llmlb/plugins/huggingface", priority: 5 },
      { module: PLUGIN, options: { root: mirror.dir } },
    ]);
    nodes.push(node);
    const done = (await resolveModel(node, TINY_CHAT_ID)).find((e) => e.case === "done")!.value as { source: string };
    expect(done.source).toBe("huggingface");
  });

  it("is listed but never asked when disabled", async () => {
    const node = await nodeWithSources(world, [
      { module: PLUGIN, priority: 1, enabled: false, options: { root: mirror.dir } },
      { module: "@llmlb/plugins/huggingface" },
    ]);
    nodes.push(node);
    const { sources } = await node.clients.resolver.listSources({});
    expect(sources.find((s) => s.module === PLUGIN)?.enabled).toBe(false);
    const events = await resolveModel(node, TINY_CHAT_ID);
    expect(events.filter((e) => e.case === "sourceTried").map((e) => e.value.source)).toEqual(["huggingface"]);
  });

  it("stops start-up with a message naming the plugin when its options are wrong", async () => {
    await expect(nodeWithSources(world, [{ module: PLUGIN, options: { root: "relative/dir" } }])).rejects.toThrow(/^source plugin ".*mirror-source\/src\/index\.js" refused its options: option "root" must be an absolute directory path/);
  });
});
