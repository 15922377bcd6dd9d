import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Code, createClient } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { errorInfoOf } from "../src/errors/index.js";
import { Health } from "../src/gen/grpc/health/v1/health_pb.js";
import type { WatchModelsResponse } from "../src/gen/llmlb/node/v1/catalog_pb.js";
import { ModelState } from "../src/gen/llmlb/node/v1/model_pb.js";
import { tempDir } from "../../../testkit/node/index.js";
import { CHAT_REPO, EMBED_REPO, startCatalogNode, tiny, tinySupported, useCatalogWorld, writeSupportedFile, type CatalogNode } from "./catalog-world.js";
import { Store } from "../src/store/store.js";

const S = ModelState;

/** Collects a WatchModels stream in the background until stop(). */
function watch(node: CatalogNode, modelIds: string[], includeInitial = true) {
  const controller = new AbortController();
  const seen: WatchModelsResponse[] = [];
  const done = (async () => {
    try {
      for await (const res of node.catalog.watchModels({ modelIds, includeInitial }, { signal: controller.signal })) seen.push(res);
    } catch (err) {
      if (!controller.signal.aborted) throw err;
    }
  })();
  return {
    seen,
    states: () => seen.map((r) => r.model?.state),
    until: async (predicate: (seen: WatchModelsResponse[]) => boolean, timeoutMs = 5000) => {
      const start = Date.now();
      while (!predicate(seen)) {
        if (Date.now() - start > timeoutMs) throw new Error(`watch timed out; saw states ${seen.map((r) => S[r.model?.state ?? 0]).join(", ")}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    stop: async () => {
      controller.abort();
      await done;
    },
    done,
  };
}

const lockPath = (home: string, id: string) => path.join(home, ".locks", `${id}.lock`);

/** The lock file of a download running in another process, as the store writes it. */
function writeDownloadLock(home: string, id: string, completedBytes: number): void {
  const lock = lockPath(home, id);
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  const now = new Date().toISOString();
  // Our own pid is a live process on this host, exactly what the store checks.
  fs.writeFileSync(lock, JSON.stringify({ id, kind: "model", pid: process.pid, host: os.hostname(), startedAt: now, heartbeatAt: now, token: "t", progress: { completedBytes, totalBytes: 1000, currentFile: "tiny-chat-Q4_K_M.gguf", bytesPerSecond: 100 } }));
}

const models = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    tinySupported({
      id: `model-${String(i).padStart(2, "0")}`,
      name: `Model ${i}`,
      description: i % 3 === 0 ? "Speaks Japanese fluently" : "A test model",
      tags: i % 2 === 0 ? ["chat", "even"] : ["embedding"],
      repo: i % 2 === 0 ? CHAT_REPO : EMBED_REPO,
    }),
  );

describe("model states, listing and watching", () => {
  const world = useCatalogWorld([tinySupported(), ...models(12)]);

  it("derives every state from lifecycle events and streams each change, progress at most ~4 times a second", async () => {
    const id = "model-00";
    const w = watch(world.node, [id]);
    await w.until((seen) => seen.length === 1);
    const events = world.node.runtime.events;
    events.emit({ type: "transfer-started", modelId: id, source: "huggingface" });
    const started = Date.now();
    for (let i = 1; i <= 100; i++) {
      events.emit({ type: "transfer-progress", modelId: id, progress: { fraction: i / 100, completedBytes: i * 10, totalBytes: 1000, currentFile: "f.gguf", bytesPerSecond: 5000 } });
      await new Promise((r) => setTimeout(r, 10));
    }
    const elapsed = Date.now() - started;
    await w.until((seen) => seen.at(-1)?.model?.progress?.completedBytes === 1000n);
    events.emit({ type: "transfer-finished", modelId: id, source: "huggingface", path: "/models/model-00/f.gguf", sizeBytes: 1000, verified: true });
    events.emit({ type: "loaded", modelId: id });
    events.emit({ type: "unloaded", modelId: id });
    events.emit({ type: "load-failed", modelId: id, reason: "out of memory", code: "INSUFFICIENT_MEMORY" });
    events.emit({ type: "deleted", modelId: id });
    await w.until((seen) => seen.at(-1)?.model?.state === S.AVAILABLE && seen.length > 3);
    await w.stop();

    const states = w.states();
    const progressUpdates = states.filter((s) => s === S.DOWNLOADING).length;
    expect(progressUpdates).toBeGreaterThanOrEqual(2);
    expect(progressUpdates).toBeLessThanOrEqual(Math.ceil((elapsed / 1000) * 4) + 2);
    const transitions = states.filter((s, i) => s !== states[i - 1]);
    expect(transitions).toEqual([S.AVAILABLE, S.DOWNLOADING, S.READY, S.LOADED, S.READY, S.FAILED, S.AVAILABLE]);
    const ready = w.seen.find((r) => r.model?.state === S.READY);
    expect(ready?.model?.local?.path).toBe("/models/model-00/f.gguf");
    // READY says how big the copy is and whether it was verified from the start, not a moment later.
    expect(ready?.model?.local).toMatchObject({ sizeOnDiskBytes: 1000n, verified: true });
    expect(w.seen.find((r) => r.model?.state === S.FAILED)?.model?.failureReason).toBe("out of memory");
  });

  it("refuses to delete a model while it is being loaded for a request (the load would fail as an invalid file)", async () => {
    const id = "model-04";
    const events = world.node.runtime.events;
    events.emit({ type: "load-started", modelId: id, path: "/models/model-04/f.gguf" });
    const refused = await world.node.catalog.deleteModel({ modelId: id }).catch((e: unknown) => errorInfoOf(e));
    expect(refused).toMatchObject({ code: Code.FailedPrecondition, reason: "MODEL_IN_USE", message: expect.stringContaining("being loaded") });
    events.emit({ type: "load-failed", modelId: id, reason: "out of memory", code: "INSUFFICIENT_MEMORY" });
    expect((await world.node.catalog.deleteModel({ modelId: id })).model?.state).toBe(S.AVAILABLE);
  });

  it("shows a download running in another process as DOWNLOADING with its progress", async () => {
    const id = "model-01";
    const lock = lockPath(world.home, id);
    const writeLock = (completedBytes: number) => writeDownloadLock(world.home, id, completedBytes);
    const w = watch(world.node, [id]);
    writeLock(250);
    await w.until((seen) => seen.at(-1)?.model?.progress?.completedBytes === 250n);
    expect(w.seen.at(-1)?.model).toMatchObject({ state: S.DOWNLOADING, progress: { fraction: 0.25, totalBytes: 1000n, currentFile: "tiny-chat-Q4_K_M.gguf" } });

    writeLock(600);
    await w.until((seen) => seen.at(-1)?.model?.progress?.completedBytes === 600n);
    const listed = await world.node.catalog.listModels({ state: S.DOWNLOADING });
    expect(listed.models.map((m) => [m.id, m.progress?.completedBytes])).toEqual([[id, 600n]]);
    expect(errorInfoOf(await world.node.catalog.deleteModel({ modelId: id }).catch((e: unknown) => e))).toMatchObject({ code: Code.FailedPrecondition, reason: "MODEL_IN_USE" });

    fs.rmSync(lock);
    await w.until((seen) => seen.at(-1)?.model?.state === S.AVAILABLE);
    await w.stop();
  });

  it("turns a model another process installed (an in-process CLI pull on this home) READY, while someone looks", async () => {
    const id = "model-05";
    expect((await world.node.catalog.getModel({ modelId: id })).model?.state).toBe(S.AVAILABLE);
    const other = await Store.open({ home: world.home });
    try {
      const partial = other.models.partialDir(id);
      fs.mkdirSync(partial, { recursive: true });
      const from = path.join(partial, "m.gguf.part");
      fs.writeFileSync(from, tiny);
      await other.installModel(id, [{ name: "m.gguf", from, size: tiny.length, sha256: createHash("sha256").update(tiny).digest("hex") }], {
        source: "huggingface", downloaded_at: new Date().toISOString(), display_name: id, repo: EMBED_REPO, revision: "a".repeat(40),
      });
    } finally {
      await other.close();
    }
    await expect.poll(async () => (await world.node.catalog.getModel({ modelId: id })).model?.state, { timeout: 5_000, interval: 100 }).toBe(S.READY);
    await world.node.catalog.deleteModel({ modelId: id });
  });

  it("turns a READY model whose directory was removed behind its back AVAILABLE again, while someone looks", async () => {
    const id = "tiny-chat-q4_k_m";
    for await (const res of world.node.clients.resolver.resolve({ target: { case: "modelId", value: id } })) void res;
    const { model } = await world.node.catalog.getModel({ modelId: id });
    expect(model?.state).toBe(S.READY);
    fs.rmSync(path.dirname(model!.local!.path), { recursive: true });
    await expect.poll(async () => (await world.node.catalog.getModel({ modelId: id })).model?.state, { timeout: 5_000, interval: 100 }).toBe(S.AVAILABLE);
    const listed = await world.node.catalog.listModels({ state: S.READY });
    expect(listed.models.map((m) => m.id)).not.toContain(id);
  });

  it("filters by state, tag and free text, and pages with opaque tokens", async () => {
    const all = await world.node.catalog.listModels({});
    expect(all.totalSize).toBe(13);
    expect(all.models.map((m) => m.id).slice(0, 3)).toEqual(["tiny-chat-q4_k_m", "model-00", "model-01"]);
    expect(all.nextPageToken).toBe("");

    const even = await world.node.catalog.listModels({ tag: "EVEN" });
    expect(even.models.map((m) => m.id)).toEqual(["model-00", "model-02", "model-04", "model-06", "model-08", "model-10"]);
    const japanese = await world.node.catalog.listModels({ query: "japanese" });
    expect(japanese.models.map((m) => m.id)).toEqual(["model-00", "model-03", "model-06", "model-09"]);
    expect((await world.node.catalog.listModels({ query: "TINY-CHAT-gguf" })).totalSize).toBe(7); // repo text

    const ids: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await world.node.catalog.listModels({ pageSize: 5, pageToken, tag: "chat" });
      expect(page.totalSize).toBe(7);
      ids.push(...page.models.map((m) => m.id));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    expect(pages).toBe(2);
    expect(ids).toEqual(["tiny-chat-q4_k_m", "model-00", "model-02", "model-04", "model-06", "model-08", "model-10"]);

    const first = await world.node.catalog.listModels({ pageSize: 2 });
    const bad = await world.node.catalog.listModels({ pageToken: "garbage!" }).catch((e: unknown) => errorInfoOf(e));
    expect(bad).toMatchObject({ code: Code.InvalidArgument, reason: "INVALID_PAGE_TOKEN" });
    const otherFilters = await world.node.catalog.listModels({ pageToken: first.nextPageToken, tag: "chat" }).catch((e: unknown) => errorInfoOf(e));
    expect(otherFilters).toMatchObject({ code: Code.InvalidArgument, reason: "INVALID_PAGE_TOKEN" });
    expect((await world.node.catalog.listModels({ pageSize: 5000 })).models).toHaveLength(13);
    expect((await world.node.catalog.listModels({ state: S.READY })).totalSize).toBe(0);
  });

  it("pages without skipping or repeating a model when one changes state between pages, and refuses a token from before a restart", async () => {
    const available = (await world.node.catalog.listModels({ state: S.AVAILABLE, pageSize: 1000 })).models.map((m) => m.id);
    expect(available.length).toBeGreaterThan(8);
    const first = await world.node.catalog.listModels({ state: S.AVAILABLE, pageSize: 4 });
    const seen = first.models.map((m) => m.id);
    expect(seen).toEqual(available.slice(0, 4));
    // A model of the first page starts downloading in another process: it leaves the AVAILABLE list.
    const leaving = seen[1]!;
    writeDownloadLock(world.home, leaving, 10);
    try {
      await expect.poll(async () => (await world.node.catalog.getModel({ modelId: leaving })).model?.state, { timeout: 5_000, interval: 100 }).toBe(S.DOWNLOADING);
      let pageToken = first.nextPageToken;
      while (pageToken) {
        const page = await world.node.catalog.listModels({ state: S.AVAILABLE, pageSize: 4, pageToken });
        seen.push(...page.models.map((m) => m.id));
        pageToken = page.nextPageToken;
      }
    } finally {
      fs.rmSync(lockPath(world.home, leaving));
    }
    expect(seen).toEqual(available);

    // The same token from an earlier process of the node (another catalog epoch) is refused, not misread.
    const [version, afterSeq, , filterKey] = Buffer.from(first.nextPageToken, "base64url").toString("utf8").split(":");
    const stale = Buffer.from([version, afterSeq, "0badc0de", filterKey].join(":"), "utf8").toString("base64url");
    const refused = await world.node.catalog.listModels({ state: S.AVAILABLE, pageToken: stale }).catch((e: unknown) => errorInfoOf(e));
    expect(refused).toMatchObject({ code: Code.InvalidArgument, reason: "INVALID_PAGE_TOKEN", message: expect.stringContaining("before the node restarted") });
  });

  it("answers the same over gRPC (binary) and the Connect protocol's JSON", async () => {
    const grpc = await world.node.catalog.listModels({ pageSize: 5, tag: "chat" });
    const res = await fetch(`${world.node.httpUrl}/llmlb.node.v1.ModelCatalogService/ListModels`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ pageSize: 5, tag: "chat" }),
    });
    const json = (await res.json()) as { models: Array<{ id: string; sizeBytes: string; state: string }>; totalSize: number; nextPageToken: string };
    expect(json.models.map((m) => m.id)).toEqual(grpc.models.map((m) => m.id));
    expect(json.models[0]).toMatchObject({ sizeBytes: String(grpc.models[0]!.sizeBytes), state: "MODEL_STATE_AVAILABLE" });
    expect([json.totalSize, json.nextPageToken]).toEqual([grpc.totalSize, grpc.nextPageToken]);
  });

  it("fills in Hub downloads and likes in the background", async () => {
    await world.node.catalog.listModels({});
    await expect
      .poll(async () => (await world.node.catalog.getModel({ modelId: "tiny-chat-q4_k_m" })).model?.hubInfo?.downloads, { timeout: 5000 })
      .toBe(1234n);
    const model = (await world.node.catalog.getModel({ modelId: "tiny-chat-q4_k_m" })).model!;
    expect(model.hubInfo?.likes).toBe(56n);
    expect(model.hubInfo?.fetchedAt).toBeDefined();
  });

  it("answers ListModels at once while the Hub hangs", async () => {
    const { file, cleanup } = writeSupportedFile(models(40).map((m, i) => ({ ...m, repo: `hang-org/repo-${i}` })));
    const fresh = tempDir("llmlb-hang-home-");
    await world.hf.down({ mode: "hang" });
    const hanging = await startCatalogNode({ HF_ENDPOINT: world.hf.url, LLMLB_SUPPORTED_MODELS: file, LLMLB_HOME: fresh.dir });
    try {
      // Open the HTTP/2 connection first (not a catalog call): what is timed is the catalog's answer.
      await createClient(Health, hanging.transport).check({ service: "" });
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        const res = await hanging.catalog.listModels({});
        // Far below the 5 s Hub timeout the list would wait for if it waited on the Hub (not a
        // speed assertion: a busy 2-core CI machine must not fail it).
        expect(performance.now() - started).toBeLessThan(2_500);
        expect(res.models).toHaveLength(40);
        expect(res.models[0]!.hubInfo).toBeUndefined();
      }
      // Requests to the hanging Hub never pile up: at most a handful are open at once.
      expect(world.hf.requests.filter((r) => !r.completed && r.path.startsWith("/api/models/hang-org")).length).toBeLessThanOrEqual(4);
    } finally {
      await hanging.stop();
      await world.hf.up();
      cleanup();
      fresh.cleanup();
    }
  });

  it("ends WatchModels streams when the node shuts down", async () => {
    const { file, cleanup } = writeSupportedFile([tinySupported()]);
    const short = await startCatalogNode({ HF_ENDPOINT: world.hf.url, LLMLB_SUPPORTED_MODELS: file });
    const w = watch(short, []);
    await w.until((seen) => seen.length === 1);
    await short.stop();
    await expect(w.done).resolves.toBeUndefined();
    cleanup();
  });
});
