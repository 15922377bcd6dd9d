import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { listDownloadLocks, readDownloadLock } from "../src/index.js";
import { entry, failure, openStack, payload, recorder, sha256, hfWorld } from "./resolver-world.js";

const FILE = "m.gguf";
const SIZE = 2 << 20;
const DATA = payload(SIZE, 5);

function writeLock(home: string, id: string, fields: { pid: number; heartbeatAt?: string; completedBytes?: number }) {
  const file = path.join(home, ".locks", `${id.replace("/", "%2F")}.lock`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const now = new Date().toISOString();
  // Written whole and renamed into place, as a real holder writes it: a reader never sees it half-written.
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({
    id, kind: "model", pid: fields.pid, host: os.hostname(), startedAt: now, heartbeatAt: fields.heartbeatAt ?? now, token: "someone-else",
    progress: { completedBytes: fields.completedBytes ?? 0, totalBytes: SIZE, currentFile: FILE, bytesPerSecond: 1000 },
  }));
  fs.renameSync(tmp, file);
  return file;
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(child.stdout);
}

describe("one download per model across processes", () => {
  const world = hfWorld("locks", { [FILE]: DATA });

  it("takes over a lock left by a dead process", async () => {
    const repo = await world.newRepo();
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url }, models: [entry("org/m", repo, FILE)] });
    try {
      const lock = writeLock(stack.home, "org/m", { pid: deadPid() });
      expect(await readDownloadLock(stack.home, "org/m")).toMatchObject({ stale: true });
      const rec = recorder();
      expect(await stack.resolver.resolve({ modelId: "org/m" }, { onEvent: rec.onEvent })).toMatchObject({ source: "huggingface", sha256: sha256(DATA) });
      expect(rec.events.some((e) => e.type === "lock-wait")).toBe(false);
      expect(fs.existsSync(lock)).toBe(false);
    } finally {
      await stack.dispose();
    }
  });

  it("deletes a model that is installed even while its download's lock is still held", async () => {
    const repo = await world.newRepo();
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url }, models: [entry("fresh", repo, FILE)] });
    try {
      await stack.resolver.resolve({ modelId: "fresh" });
      // The moment after an install, when READY is announced and the job still holds its lock.
      writeLock(stack.home, "fresh", { pid: process.pid, completedBytes: SIZE });
      expect(await readDownloadLock(stack.home, "fresh")).toMatchObject({ stale: false });
      // Before, this was refused as "being downloaded by process <this one>".
      expect(await stack.store.deleteModel("fresh")).toBe(true);
      expect(await stack.store.getModel("fresh")).toBeUndefined();
    } finally {
      await stack.dispose();
    }
  });

  it("takes over a lock whose heartbeat stopped more than 30 s ago", async () => {
    const repo = await world.newRepo();
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url }, models: [entry("m", repo, FILE)] });
    try {
      writeLock(stack.home, "m", { pid: process.pid, heartbeatAt: new Date(Date.now() - 31_000).toISOString() });
      expect(await stack.resolver.resolve({ modelId: "m" })).toMatchObject({ source: "huggingface" });
    } finally {
      await stack.dispose();
    }
  });

  it("waits for a live holder, reporting its progress, and gives up after the configured time", async () => {
    const repo = await world.newRepo();
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url, LLMLB_LOCK_WAIT_TIMEOUT: "1" }, models: [entry("m", repo, FILE)] });
    let completed = 1000;
    const beat = setInterval(() => writeLock(stack.home, "m", { pid: process.pid, completedBytes: (completed += 1000) }), 100);
    try {
      writeLock(stack.home, "m", { pid: process.pid, completedBytes: completed });
      expect(await listDownloadLocks(stack.home)).toMatchObject([{ id: "m", pid: process.pid, stale: false }]);
      const rec = recorder();
      const err = await failure(stack.resolver.resolve({ modelId: "m" }, { onEvent: rec.onEvent }));
      expect(err).toMatchObject({ code: Code.DeadlineExceeded, reason: "LOCK_WAIT_TIMEOUT" });
      expect(err.message).toMatch(new RegExp(`process ${process.pid} on ${os.hostname()}`));
      expect(rec.events).toContainEqual({ type: "lock-wait", pid: process.pid, host: os.hostname() });
      const seen = rec.events.flatMap((e) => (e.type === "progress" ? [e.progress.completedBytes] : []));
      expect(seen.length).toBeGreaterThanOrEqual(2);
      expect(seen.at(-1)).toBeGreaterThan(seen[0]!);
      expect(world.hf.bytesServed(repo, FILE)).toBe(0);
    } finally {
      clearInterval(beat);
      await stack.dispose();
    }
  });

  it("follows the process that took its lock over (it was stopped too long) instead of failing, and takes the model it installs", async () => {
    const repo = await world.newRepo();
    world.hf.throttle(256 << 10, { host: "cdn" });
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url, LLMLB_DOWNLOAD_CONNECTIONS: "1" }, models: [entry("m", repo, FILE)] });
    // The process that judged this one stale and took over: alive, heartbeating its own lock.
    const taker = spawn("sleep", ["60"], { stdio: "ignore" });
    let beat: NodeJS.Timeout | undefined;
    try {
      const rec = recorder();
      let tookOver = false;
      const resolving = stack.resolver.resolve({ modelId: "m" }, {
        onEvent: (e) => {
          rec.onEvent(e);
          if (!tookOver && e.type === "progress" && e.progress.completedBytes >= SIZE / 8) {
            tookOver = true;
            beat = setInterval(() => writeLock(stack.home, "m", { pid: taker.pid!, completedBytes: SIZE / 2 }), 100);
          }
        },
      });
      await expect.poll(() => rec.events.some((e) => e.type === "lock-wait" && e.pid === taker.pid), { timeout: 10_000 }).toBe(true);
      // The taker finishes: installs a correct copy and releases its lock.
      const elsewhere = path.join(stack.home, "taker", FILE);
      fs.mkdirSync(path.dirname(elsewhere), { recursive: true });
      fs.writeFileSync(elsewhere, DATA);
      await stack.store.installModel("m", [{ name: FILE, from: elsewhere, size: SIZE, sha256: sha256(DATA) }], {
        source: "huggingface", downloaded_at: new Date().toISOString(), display_name: "m", repo, revision: "a".repeat(40),
      });
      clearInterval(beat);
      fs.rmSync(path.join(stack.home, ".locks", "m.lock"));

      const result = await resolving;
      expect(result).toMatchObject({ sha256: sha256(DATA), sizeBytes: SIZE });
      expect(sha256(fs.readFileSync(result.path))).toBe(sha256(DATA));
      // huggingface supplied it (no "another process took over" failure, no try of the next source).
      expect(rec.events.filter((e) => (e.type === "source-failed" || e.type === "source-tried") && e.source !== "local")).toEqual([{ type: "source-tried", source: "huggingface" }]);
      expect(result.source).toBe("huggingface");
      // It stopped downloading once the lock was no longer its own.
      expect(world.hf.bytesServed(repo, FILE)).toBeLessThan(SIZE);
    } finally {
      clearInterval(beat);
      taker.kill();
      world.hf.throttle(null);
      await stack.dispose();
    }
  });
});
