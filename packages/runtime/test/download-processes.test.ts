import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readDownloadLock } from "../src/index.js";
import { startHfStandin, type HfStandin } from "../../../testkit/standins/index.js";
import { spawnResolveChild } from "./child-process.js";
import { entry, failure, openStack, payload, recorder, sha256 } from "./resolver-world.js";

const FILE = "m.gguf";
const SIZE = 2 << 20;

describe("downloads shared with, and survived by, another process", () => {
  let hf: HfStandin;
  beforeAll(async () => {
    hf = await startHfStandin();
  });
  afterAll(async () => hf?.close());

  it("20 callers here and one in another process: served once, the holder's progress visible to the waiters", async () => {
    const repo = "procs/shared";
    const data = payload(SIZE, 21);
    await hf.addRepo(repo, { files: { [FILE]: data } });
    // ~3 s at this pace: the holder rewrites its lock (with progress) every second.
    hf.throttle(700 << 10, { host: "cdn", repoId: repo });
    const models = [entry("org/shared", repo, FILE)];
    const stack = await openStack({ env: { HF_ENDPOINT: hf.url }, models });
    try {
      const child = spawnResolveChild({ home: stack.home, env: { HF_ENDPOINT: hf.url, LLMLB_DOWNLOAD_CONNECTIONS: "1" }, models, modelId: "org/shared" });
      await child.waitFor((l) => "event" in l && l.event.type === "progress" && l.event.progress.completedBytes > 0);
      const recs = Array.from({ length: 20 }, () => recorder());
      const results = await Promise.all(recs.map((r) => stack.resolver.resolve({ modelId: "org/shared" }, { onEvent: r.onEvent })));
      expect(results.every((r) => r.sha256 === sha256(data) && r.source === "huggingface")).toBe(true);
      for (const r of recs) {
        expect(r.events).toContainEqual({ type: "lock-wait", pid: child.process.pid, host: os.hostname() });
        const seen = r.events.flatMap((e) => (e.type === "progress" ? [e.progress.completedBytes] : []));
        expect(seen.some((b) => b > 0 && b < SIZE)).toBe(true);
      }
      expect(await child.waitFor((l) => "done" in l)).toMatchObject({ done: { source: "huggingface", sha256: sha256(data) } });
      expect(await child.exited).toBe(0);
      expect(hf.bytesServed(repo, FILE)).toBe(SIZE);
    } finally {
      hf.clearFaults();
      await stack.dispose();
    }
  });

  it("resumes after kill -9 of the downloading process; nothing is READY unless its sha256 matches", async () => {
    const repo = "procs/killed";
    const data = payload(SIZE, 22);
    await hf.addRepo(repo, { files: { [FILE]: data } });
    const half = SIZE / 2;
    // The first process gets exactly half of the file, then the CDN goes silent.
    hf.stall(half, "forever", { host: "cdn", repoId: repo });
    const models = [entry("killed", repo, FILE), entry("damaged", repo, FILE)];
    const stack = await openStack({ env: { HF_ENDPOINT: hf.url, LLMLB_DOWNLOAD_CONNECTIONS: "1" }, models });
    const partial = (id: string) => path.join(stack.store.models.partialDir(id), `${FILE}.part`);
    const savedDone = (id: string) => {
      try {
        return (JSON.parse(fs.readFileSync(`${partial(id)}.json`, "utf8")) as { done: Array<[number, number]> }).done;
      } catch {
        return [];
      }
    };
    try {
      for (const id of ["killed", "damaged"]) {
        const child = spawnResolveChild({ home: stack.home, env: { HF_ENDPOINT: hf.url, LLMLB_DOWNLOAD_CONNECTIONS: "1", LLMLB_STALL_TIMEOUT: "60" }, models, modelId: id });
        await expect.poll(async () => (await readDownloadLock(stack.home, id))?.progress.completedBytes, { timeout: 30_000 }).toBe(half);
        await expect.poll(() => savedDone(id), { timeout: 5_000 }).toEqual([[0, half]]);
        await child.kill9();
        expect(await readDownloadLock(stack.home, id)).toMatchObject({ pid: child.process.pid, stale: true });
        expect(await stack.store.listModels()).toEqual([]);
        hf.stall(half, "forever", { host: "cdn", repoId: repo });
      }
      hf.clearFaults();

      // Restart: the stale lock is taken over and the download continues from the middle.
      hf.clearLog();
      const resumed = await stack.resolver.resolve({ modelId: "killed" });
      expect(resumed).toMatchObject({ source: "huggingface", sha256: sha256(data), sizeBytes: SIZE });
      const gets = hf.requests.filter((r) => r.host === "cdn" && r.method === "GET");
      expect(gets.map((r) => r.rangeStart)).toEqual([half]);
      expect(hf.bytesServed(repo, FILE)).toBe(half);
      expect((await stack.store.listModels()).map((m) => [m.id, m.files[0]!.sha256])).toEqual([["killed", sha256(data)]]);

      // A partial file damaged while nobody downloaded: the full-file check refuses it.
      const fd = fs.openSync(partial("damaged"), "r+");
      fs.writeSync(fd, Buffer.from([data[1000]! ^ 0xff]), 0, 1, 1000);
      fs.closeSync(fd);
      const err = await failure(stack.resolver.resolve({ modelId: "damaged" }));
      expect(err).toMatchObject({ code: Code.DataLoss, reason: "CHECKSUM_MISMATCH" });
      expect((await stack.store.listModels()).map((m) => m.id)).toEqual(["killed"]);
      expect(fs.existsSync(partial("damaged"))).toBe(false);
    } finally {
      hf.clearFaults();
      await stack.dispose();
    }
  });
});
