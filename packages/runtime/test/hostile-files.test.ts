import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorInfoOf } from "../src/index.js";
import { ModelState } from "../src/gen/llmlb/node/v1/model_pb.js";
import { startTestNode, tempDir, type TestNode } from "../../../testkit/node/index.js";
import { describeBytes, tinyModelBytes } from "../../../testkit/gguf/tiny-gguf.js";
import { hostileGgufBytes, TEMPLATE_BOMB, type HostileKind } from "../../../testkit/gguf/hostile-gguf.js";
import { startRouterStandin, type RouterStandin } from "../../../testkit/standins/index.js";
import { startTinyWorld, tinyEntry, type TinyWorld } from "../../../testkit/world/tiny-world.js";

/**
 * Files that crash an unguarded llama.cpp arrive through every channel a model can come from;
 * each is refused before it becomes READY, and the node keeps answering chats on another model.
 */
const KINDS: readonly HostileKind[] = ["huge-array-count", "too-many-layers", "experts-without-count", "template-bomb"];
const CHANNELS = ["hf", "router", "dir"] as const;
const ROUTER_KEY = "router-key";
const EXPECTED_FIELD: Record<HostileKind, RegExp> = {
  "huge-array-count": /tokenizer\.ggml\.tokens array length/,
  "too-many-layers": /llama\.block_count/,
  "experts-without-count": /llama\.expert_used_count/,
  "template-bomb": /tokenizer\.chat_template/,
};

let world: TinyWorld;
let router: RouterStandin;
let node: TestNode;
const extraDir = tempDir("llmlb-extra-");

const idOf = (channel: string, kind: HostileKind) => `${channel}-${kind}`;

beforeAll(async () => {
  router = await startRouterStandin({ apiKey: ROUTER_KEY });
  const entries = [];
  for (const kind of KINDS) {
    const bytes = hostileGgufBytes(kind);
    for (const channel of CHANNELS) {
      const id = idOf(channel, kind);
      const file = `${id}.gguf`;
      // Only the HF channel's repo exists on the hub; the others fall through to their source.
      entries.push({ ...tinyEntry(id, file, bytes, ["text-generation"]), repo: `llmlb-test/${channel === "hf" ? id : "absent"}`, sha256: describeBytes(bytes).sha256 });
      if (channel === "router") await router.addModel(id, bytes);
      if (channel === "dir") fs.writeFileSync(path.join(extraDir.dir, file), bytes);
    }
  }
  // Good files in the same directory: one the catalog pins by sha256, one it does not.
  const good = tinyModelBytes();
  fs.writeFileSync(path.join(extraDir.dir, "dir-good.gguf"), good);
  fs.writeFileSync(path.join(extraDir.dir, "dir-unpinned.gguf"), good);
  fs.writeFileSync(path.join(extraDir.dir, "dir-unused.gguf"), good);
  entries.push({ ...tinyEntry("dir-unused", "dir-unused.gguf", good, ["text-generation"]), repo: "llmlb-test/absent" });
  entries.push({ ...tinyEntry("dir-good", "dir-good.gguf", good, ["text-generation"]), repo: "llmlb-test/absent", sha256: describeBytes(good).sha256 });
  entries.push({ ...tinyEntry("dir-unpinned", "dir-unpinned.gguf", good, ["text-generation"]), repo: "llmlb-test/absent", sha256: undefined });
  world = await startTinyWorld({ extraModels: entries });
  for (const kind of KINDS) await world.hf.addRepo(`llmlb-test/${idOf("hf", kind)}`, { files: { [`${idOf("hf", kind)}.gguf`]: hostileGgufBytes(kind) } });
  node = await startTestNode({
    ...world.env,
    LLMLB_ROUTER_URL: router.url,
    LLMLB_ROUTER_API_KEY: ROUTER_KEY,
    LLMLB_EXTRA_MODEL_DIRS: extraDir.dir,
  });
});
afterAll(async () => {
  await node?.stop();
  await world?.close();
  await router?.close();
  extraDir.cleanup();
});

async function chatText(modelId: string, maxTokens = 8): Promise<string> {
  let text = "";
  for await (const m of node.clients.inference.chat({ modelId, messages: [{ role: "user", content: "Hello" }], temperature: 0, maxTokens })) text += m.delta;
  return text;
}

describe("hostile GGUF files", () => {
  it("refuses each crash class from the hub, a router and an extra directory; never READY; the node keeps serving", async () => {
    expect((await chatText("tiny-chat")).length).toBeGreaterThan(0);
    // A long generation on the good model runs while every hostile file is tried.
    const serving = chatText("tiny-chat", 200);
    serving.catch(() => undefined);
    for (const kind of KINDS) {
      for (const channel of CHANNELS) {
        const id = idOf(channel, kind);
        const failure = errorInfoOf(await chatText(id).catch((e: unknown) => e));
        expect(failure, id).toMatchObject({ reason: "INVALID_MODEL_FILE" });
        expect(failure.message, id).toMatch(EXPECTED_FIELD[kind]);
        // A download is named as the repository names it, and fetching it again would not help.
        if (channel === "dir") expect(failure.message, id).toMatch(/It was not loaded; replace the file/);
        else expect(failure.message, id).toMatch(/^\S+\.gguf, as its source serves it, is not a usable GGUF file: .*fetching it again gives the same file/);
        const { model } = await node.clients.catalog.getModel({ modelId: id });
        expect(model?.state, id).toBe(ModelState.FAILED);
        expect(model?.failureReason, id).toMatch(EXPECTED_FIELD[kind]);
        expect(await node.runtime.store.getModel(id), id).toBeUndefined();
      }
    }
    expect((await serving).length).toBeGreaterThan(0);
    expect((await chatText("tiny-chat")).length).toBeGreaterThan(0);
    expect((await node.runtime.engine.list()).map((m) => m.modelId)).toEqual(["tiny-chat"]);
  });

  it("refuses a registered template bomb within a second, with a clear error", async () => {
    const started = Date.now();
    const failure = errorInfoOf(
      await node.clients.catalog.registerModel({ repo: "llmlb-test/tiny-GGUF", filename: "tiny-chat-F32.gguf", id: "bomb", chatTemplate: TEMPLATE_BOMB }).catch((e: unknown) => e),
    );
    expect(Date.now() - started).toBeLessThan(1000);
    expect(failure).toMatchObject({ reason: "INVALID_CHAT_TEMPLATE", metadata: { field: "chat_template", problem: "timeout" } });
    expect(failure.message).toMatch(/chat_template was refused: the render took longer than 100 ms/);
    await expect(node.clients.catalog.getModel({ modelId: "bomb" })).rejects.toThrow(/not/);
    // A usable template registers.
    const ok = await node.clients.catalog.registerModel({ repo: "llmlb-test/tiny-GGUF", filename: "tiny-chat-F32.gguf", id: "templated", chatTemplate: "{% for m in messages %}{{ m.content }}{% endfor %}" });
    expect(ok.model?.chatTemplate).toContain("m.content");
  });

  it("refuses a chat whose messages make a registered template explode, within the bound, and keeps serving", async () => {
    // ChatML, except that one message content starts a loop of 10^8 steps: the registration's
    // sample conversations never say it, so only a request's own messages can set it off.
    const trap =
      "{% for message in messages %}{% if message['content'] == 'boom' %}{% for i in range(100000000) %}x{% endfor %}{% endif %}" +
      "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}" +
      "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
    await node.clients.catalog.registerModel({ repo: "llmlb-test/tiny-GGUF", filename: "tiny-chat-F32.gguf", id: "trapped", chatTemplate: trap });
    expect((await chatText("trapped", 4)).length).toBeGreaterThan(0);
    const serving = chatText("tiny-chat", 100);
    serving.catch(() => undefined);
    const started = Date.now();
    const failure = errorInfoOf(
      await (async () => {
        for await (const _ of node.clients.inference.chat({ modelId: "trapped", messages: [{ role: "user", content: "boom" }], maxTokens: 4 })) void _;
      })().catch((e: unknown) => e),
    );
    expect(Date.now() - started).toBeLessThan(1000);
    expect(failure).toMatchObject({ reason: "INVALID_CHAT_TEMPLATE", metadata: { model_id: "trapped", problem: "timeout" } });
    expect((await serving).length).toBeGreaterThan(0);
  });
});

describe("a model found in an extra directory", () => {
  it("shows where it is once used: LOADED, then READY after unloading, with its path, source and whether a digest vouched for it", async () => {
    expect((await node.clients.catalog.getModel({ modelId: "dir-good" })).model?.state).toBe(ModelState.AVAILABLE);
    expect((await chatText("dir-good")).length).toBeGreaterThan(0);
    const loaded = (await node.clients.catalog.getModel({ modelId: "dir-good" })).model;
    expect(loaded?.state).toBe(ModelState.LOADED);
    expect(loaded?.local).toMatchObject({ path: path.join(extraDir.dir, "dir-good.gguf"), source: "local", verified: true });
    await node.clients.inference.unloadModel({ modelId: "dir-good" });
    const unloaded = (await node.clients.catalog.getModel({ modelId: "dir-good" })).model;
    expect(unloaded?.state).toBe(ModelState.READY);
    expect(unloaded?.local?.path).toBe(path.join(extraDir.dir, "dir-good.gguf"));
    // Used in place, never copied into the store.
    expect(await node.runtime.store.getModel("dir-good")).toBeUndefined();

    // Without a sha256 in the catalog the file is hashed and validated, but nothing vouched for its bytes.
    expect((await chatText("dir-unpinned")).length).toBeGreaterThan(0);
    expect((await node.clients.catalog.getModel({ modelId: "dir-unpinned" })).model?.local).toMatchObject({ source: "local", verified: false });

    // The next start (or a CLI on the same home) shows the checked, unchanged file READY without reading it;
    // a file never checked, or changed since, waits for its first use.
    const later = new Date(Date.now() + 5_000);
    fs.utimesSync(path.join(extraDir.dir, "dir-unpinned.gguf"), later, later);
    const restarted = await startTestNode({ ...world.env, LLMLB_HOME: node.home, LLMLB_EXTRA_MODEL_DIRS: extraDir.dir });
    try {
      const state = async (modelId: string) => (await restarted.clients.catalog.getModel({ modelId })).model;
      expect(await state("dir-good")).toMatchObject({ state: ModelState.READY, local: { path: path.join(extraDir.dir, "dir-good.gguf"), source: "local", verified: true } });
      expect((await state("dir-unpinned"))?.state).toBe(ModelState.AVAILABLE);
      expect((await state("dir-unused"))?.state).toBe(ModelState.AVAILABLE);
      expect((await state("dir-too-many-layers"))?.state).toBe(ModelState.AVAILABLE);
      // Deleting it has nothing in the store to delete, and never touches the directory.
      const refused = errorInfoOf(await restarted.clients.catalog.deleteModel({ modelId: "dir-good" }).catch((e: unknown) => e));
      expect(refused).toMatchObject({ reason: "READ_ONLY_COPY", metadata: { path: path.join(extraDir.dir, "dir-good.gguf") } });
      expect(refused.message).toContain("LLMLB_EXTRA_MODEL_DIRS");
      expect(fs.existsSync(path.join(extraDir.dir, "dir-good.gguf"))).toBe(true);
      expect((await state("dir-good"))?.state).toBe(ModelState.READY);
    } finally {
      await restarted.stop();
    }
  });
});
