import fs from "node:fs";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { readDownloadLock, type ModelEvent } from "../src/index.js";
import { entry, failure, openStack, payload, recorder, sha256, hfWorld } from "./resolver-world.js";

const FILE = "m.gguf";
const SIZE = 2 << 20;
const DATA = payload(SIZE, 8);

describe("callers of the same model in one process share one transfer", () => {
  const world = hfWorld("sharing", { [FILE]: DATA });
  const newRepo = async () => {
    const repo = await world.newRepo();
    world.hf.throttle(2 << 20, { host: "cdn", repoId: repo });
    return repo;
  };

  it("20 concurrent callers: the file is served once, each caller sees progress, a late joiner starts from a snapshot", async () => {
    const repo = await newRepo();
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url }, models: [entry("m", repo, FILE)] });
    const bus: ModelEvent[] = [];
    stack.events.on((e) => bus.push(e));
    try {
      const recs = Array.from({ length: 20 }, () => recorder());
      const calls = recs.map((r) => stack.resolver.resolve({ modelId: "m" }, { onEvent: r.onEvent }));
      for (const call of calls) call.catch(() => undefined);
      await expect.poll(() => recs[0]!.events.some((e) => e.type === "progress" && e.progress.completedBytes > 0), { timeout: 10_000 }).toBe(true);
      const late = recorder();
      calls.push(stack.resolver.resolve({ modelId: "m" }, { onEvent: late.onEvent }));
      const results = await Promise.all(calls);
      expect(new Set(results.map((r) => `${r.path}|${r.sha256}|${r.source}`))).toEqual(new Set([`${results[0]!.path}|${sha256(DATA)}|huggingface`]));
      expect(world.hf.bytesServed(repo, FILE)).toBe(SIZE);
      for (const r of recs) expect(r.events.filter((e) => e.type === "progress").length).toBeGreaterThanOrEqual(2);
      // The late joiner first hears which source is running and how far it is.
      expect(late.events[0]).toEqual({ type: "source-tried", source: "huggingface" });
      expect(late.events[1]).toMatchObject({ type: "progress" });
      expect((late.events[1] as { progress: { completedBytes: number } }).progress.completedBytes).toBeGreaterThan(0);
      expect(bus.filter((e) => e.type === "transfer-started")).toEqual([{ type: "transfer-started", modelId: "m", source: "huggingface" }]);
      expect(bus.filter((e) => e.type === "transfer-finished")).toHaveLength(1);
      const progressed = bus.filter((e) => e.type === "transfer-progress").length;
      expect(progressed).toBeGreaterThanOrEqual(2);
      expect(progressed).toBeLessThanOrEqual(10); // ~1 s at most 4 a second, plus the final one
    } finally {
      await stack.dispose();
    }
  });

  it("a caller that cancels only stops waiting; the transfer stops when nobody waits", async () => {
    const repo = await newRepo();
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url }, models: [entry("a", repo, FILE), entry("b", repo, FILE)] });
    const bus: ModelEvent[] = [];
    stack.events.on((e) => bus.push(e));
    try {
      const leaving = new AbortController();
      const left = stack.resolver.resolve({ modelId: "a" }, {
        signal: leaving.signal,
        onEvent: (e) => e.type === "progress" && e.progress.completedBytes > 0 && leaving.abort(),
      });
      const stays = stack.resolver.resolve({ modelId: "a" });
      expect(await failure(left)).toMatchObject({ code: Code.Canceled, reason: "CANCELLED" });
      expect(await stays).toMatchObject({ sha256: sha256(DATA) });

      const alone = new AbortController();
      const only = stack.resolver.resolve({ modelId: "b" }, {
        signal: alone.signal,
        onEvent: (e) => e.type === "progress" && e.progress.completedBytes > 0 && alone.abort(),
      });
      expect(await failure(only)).toMatchObject({ reason: "CANCELLED" });
      await expect.poll(() => stack.resolver.inFlight()).toEqual([]);
      expect(await readDownloadLock(stack.home, "b")).toBeUndefined();
      expect(await stack.store.isCached("b")).toBe(false);
      expect(fs.existsSync(`${stack.store.models.partialDir("b")}/${FILE}.part`)).toBe(true);
      // Nobody waiting is not a failure: the model is announced cancelled (back to available), never failed.
      expect(bus).toContainEqual({ type: "transfer-cancelled", modelId: "b" });
      expect(bus.filter((e) => e.type === "transfer-failed" && e.modelId === "b")).toEqual([]);
    } finally {
      await stack.dispose();
    }
  });
});
