import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { text } from "node:stream/consumers";
import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ModelEvents, Store, idToFileName, readDownloadLock, validateModelId, type ModelEvent } from "../src/index.js";
import { tempDir } from "../../../testkit/node/index.js";
import { failure, listTree, sha256 } from "./resolver-world.js";

/** Installs a model the way the resolver does: verified files moved in from the partial directory. */
async function install(store: Store, id: string, files: Record<string, string>, revision = "a".repeat(40)) {
  const partial = store.models.partialDir(id);
  fs.mkdirSync(partial, { recursive: true });
  const list = Object.entries(files).map(([name, content]) => {
    const from = path.join(partial, `${name}.part`);
    fs.writeFileSync(from, content);
    return { name, from, size: Buffer.byteLength(content), sha256: sha256(Buffer.from(content)) };
  });
  return store.installModel(id, list, { source: "huggingface", downloaded_at: "2025-01-02T03:04:05.000Z", display_name: `Model ${id}`, repo: "org/repo", revision });
}

describe("model ids", () => {
  it.each([
    "qwen2.5-0.5b-instruct-q4_k_m", "Qwen/Qwen2.5-0.5B-Instruct-GGUF", "org/model_v1.2", "a", "x".repeat(128),
  ])("accepts %j", (id) => {
    expect(validateModelId(id)).toBe(id);
  });

  it.each([
    "../etc/passwd", "a/../b", "..", "a/b/c", "/abs/path", "a\\b", "a\0b", "a\nb", ".hidden", "org/.hidden", "", "x".repeat(129),
    "x".repeat(300), "a b", "a%2Fb", "org/", "/name",
  ])("rejects %j with INVALID_ARGUMENT saying what is allowed", (id) => {
    const err = (() => {
      try {
        validateModelId(id);
      } catch (e) {
        return e as { code: Code; reason: string; message: string };
      }
      throw new Error("accepted");
    })();
    expect(err).toMatchObject({ code: Code.InvalidArgument, reason: "INVALID_MODEL_ID" });
    expect(err.message).toMatch(/letters, digits, '\.', '-' and '_', with at most one '\/'/);
  });

  it("maps namespace/name to one file name, reversibly", () => {
    expect(idToFileName("org/name")).toBe("org%2Fname");
    expect(idToFileName("plain")).toBe("plain");
  });
});

describe("Store", () => {
  let home: { dir: string; cleanup: () => void };
  let store: Store;
  let events: ModelEvent[];
  beforeEach(async () => {
    home = tempDir("llmlb-store-");
    const bus = new ModelEvents();
    events = [];
    bus.on((e) => events.push(e));
    store = await Store.open({ home: home.dir, events: bus });
  });
  afterEach(async () => {
    await store.close();
    home.cleanup();
  });

  it("installs into <home>/models/<id>/ with metadata.json, and lists, gets and sizes what is there", async () => {
    const model = await install(store, "org/two-files", { "m-00001-of-00002.gguf": "first", "m-00002-of-00002.gguf": "second!" });
    const dir = path.join(home.dir, "models", "org%2Ftwo-files");
    expect(model).toMatchObject({
      id: "org/two-files", displayName: "Model org/two-files", sizeBytes: 12, source: "huggingface", revision: "a".repeat(40),
      path: path.join(dir, "m-00001-of-00002.gguf"), dir,
    });
    expect(model.downloadedAt.toISOString()).toBe("2025-01-02T03:04:05.000Z");
    expect(model.files.map((f) => [f.name, f.size, f.sha256])).toEqual([
      ["m-00001-of-00002.gguf", 5, sha256(Buffer.from("first"))],
      ["m-00002-of-00002.gguf", 7, sha256(Buffer.from("second!"))],
    ]);
    const metadata = JSON.parse(fs.readFileSync(path.join(dir, "metadata.json"), "utf8"));
    expect(metadata).toMatchObject({ id: "org/two-files", repo: "org/repo", revision: "a".repeat(40), source: "huggingface", downloaded_at: "2025-01-02T03:04:05.000Z" });
    expect(fs.existsSync(store.models.partialDir("org/two-files"))).toBe(false);

    await install(store, "single", { "s.gguf": "abc" });
    expect((await store.listModels()).map((m) => m.id)).toEqual(["org/two-files", "single"]);
    expect(await store.isCached("single")).toBe(true);
    expect(await store.isCached("missing")).toBe(false);
    expect(await store.totalSize()).toBe(15);
    expect(listTree(path.join(home.dir, "models", ".staging"))).toEqual([]);
  });

  it("never lists a model whose files are missing or whose metadata is damaged", async () => {
    const model = await install(store, "damaged", { "d.gguf": "data" });
    await install(store, "broken-meta", { "b.gguf": "data" });
    fs.rmSync(model.path);
    fs.writeFileSync(path.join(home.dir, "models", "broken-meta", "metadata.json"), "{ not json");
    fs.mkdirSync(path.join(home.dir, "models", "stray-dir"));
    expect(await store.listModels()).toEqual([]);
    expect(await store.getModel("damaged")).toBeUndefined();
  });

  it("deletes one model (emitting deleted), clears all, and refuses while a live download holds the lock of a model not installed yet", async () => {
    await install(store, "a", { "a.gguf": "1" });
    await install(store, "b", { "b.gguf": "2" });
    const holdLock = (id: string) => {
      const lock = path.join(home.dir, ".locks", `${id}.lock`);
      fs.mkdirSync(path.dirname(lock), { recursive: true });
      const now = new Date().toISOString();
      fs.writeFileSync(lock, JSON.stringify({ id, kind: "model", pid: process.pid, host: os.hostname(), startedAt: now, heartbeatAt: now, token: "t", progress: {} }));
      return lock;
    };
    // c is being downloaded: nothing of it is installed yet.
    const lock = holdLock("c");
    expect(await readDownloadLock(home.dir, "c")).toMatchObject({ pid: process.pid, stale: false });
    expect(await failure(store.deleteModel("c"))).toMatchObject({ code: Code.FailedPrecondition, reason: "MODEL_IN_USE" });
    // b is installed; its download's job holds the lock a moment longer, and the bytes are final.
    holdLock("b");
    expect(await store.deleteModel("b")).toBe(true);
    expect(await store.deleteModel("a")).toBe(true);
    expect(await store.deleteModel("a")).toBe(false);
    expect(events).toEqual([{ type: "deleted", modelId: "b" }, { type: "deleted", modelId: "a" }]);
    await install(store, "d", { "d.gguf": "3" });
    expect(await store.clear()).toEqual({ deleted: ["d"], skipped: [] });
    fs.rmSync(lock);
    expect(await store.listModels()).toEqual([]);
  });

  it("serves byte ranges of a READY model's files by id and file name only", async () => {
    await install(store, "org/blob", { "x.gguf": "0123456789", "y.gguf": "abc" });
    const whole = await store.openModelFile("org/blob");
    expect(await text(whole.stream)).toBe("0123456789");
    expect(whole).toMatchObject({ name: "x.gguf", size: 10, start: 0, end: 9, sha256: sha256(Buffer.from("0123456789")) });
    const part = await store.openModelFile("org/blob", { range: { start: 2, end: 4 } });
    expect(await text(part.stream)).toBe("234");
    const second = await store.openModelFile("org/blob", { file: "y.gguf", range: { start: 1 } });
    expect(await text(second.stream)).toBe("bc");
    expect(await failure(store.openModelFile("org/blob", { file: "../../node.db" }))).toMatchObject({ reason: "FILE_NOT_FOUND" });
    expect(await failure(store.openModelFile("org/blob", { range: { start: 10 } }))).toMatchObject({ reason: "INVALID_ARGUMENT" });
    expect(await failure(store.openModelFile("not-here"))).toMatchObject({ reason: "MODEL_NOT_READY" });
    expect(await failure(store.openModelFile("../x"))).toMatchObject({ reason: "INVALID_MODEL_ID" });
  });

  it("keeps adapters under <home>/adapters/<id>/", async () => {
    const partial = store.adapters.partialDir("hf--org--repo--lora.gguf");
    fs.mkdirSync(partial, { recursive: true });
    fs.writeFileSync(path.join(partial, "lora.gguf.part"), "lora");
    await store.installAdapter("hf--org--repo--lora.gguf", [{ name: "lora.gguf", from: path.join(partial, "lora.gguf.part"), size: 4, sha256: sha256(Buffer.from("lora")) }], {
      source: "huggingface", downloaded_at: new Date().toISOString(), ref: "hf:org/repo/lora.gguf",
    });
    expect(await store.listAdapters()).toMatchObject([{ id: "hf--org--repo--lora.gguf", ref: "hf:org/repo/lora.gguf", sizeBytes: 4, path: path.join(home.dir, "adapters", "hf--org--repo--lora.gguf", "lora.gguf") }]);
    expect(await store.deleteAdapter("hf--org--repo--lora.gguf")).toBe(true);
    expect(await store.listAdapters()).toEqual([]);
  });

  it("treats metadata.json as the truth: a lost index is rebuilt", async () => {
    await install(store, "kept", { "k.gguf": "keep" });
    await store.close();
    fs.rmSync(path.join(home.dir, "node.db"));
    store = await Store.open({ home: home.dir });
    expect((await store.listModels()).map((m) => m.id)).toEqual(["kept"]);
  });
});
