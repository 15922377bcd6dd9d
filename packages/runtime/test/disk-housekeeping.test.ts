import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { SharedReservations } from "../src/store/shared-reservations.js";
import { DiskReservations } from "../src/transfer/disk-reservations.js";
import { freeBytes } from "../src/transfer/disk-space.js";
import { tempDir } from "../../../testkit/node/index.js";
import { captureLogger, openStack } from "./resolver-world.js";

const DAY = 24 * 3600 * 1000;

function write(file: string, bytes: number, ageMs = 0): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.alloc(bytes, 1));
  if (ageMs > 0) {
    const t = new Date(Date.now() - ageMs);
    fs.utimesSync(file, t, t);
  }
}

describe("leftovers are swept at start", () => {
  it("removes .trash, orphaned staging, partial downloads untouched for a week and stale takeover mutexes; keeps fresh partials; logs each", async () => {
    const home = tempDir("llmlb-sweep-");
    const models = path.join(home.dir, "models");
    write(path.join(models, ".trash", "old-model-0123456789ab", "m.gguf"), 1000);
    write(path.join(models, ".staging", "crashed-0123456789ab", "m.gguf"), 2000);
    write(path.join(models, ".partial", "abandoned", "m.gguf.part"), 3000, 8 * DAY);
    write(path.join(models, ".partial", "abandoned", "m.gguf.part.json"), 10, 8 * DAY);
    write(path.join(models, ".partial", "resumable", "m.gguf.part"), 4000, 2 * DAY);
    const weekAgo = new Date(Date.now() - 8 * DAY);
    fs.utimesSync(path.join(models, ".partial", "abandoned"), weekAgo, weekAgo);
    write(path.join(home.dir, "adapters", ".trash", "a-0123456789ab", "a.gguf"), 500);
    const takeover = path.join(home.dir, ".locks", "x.lock.takeover");
    fs.mkdirSync(takeover, { recursive: true });
    const old = new Date(Date.now() - 3600_000);
    fs.utimesSync(takeover, old, old);
    const { logger, lines } = captureLogger();
    const stack = await openStack({ home: home.dir, logger });
    try {
      const left = (p: string) => fs.existsSync(p);
      expect(left(path.join(models, ".trash", "old-model-0123456789ab"))).toBe(false);
      expect(left(path.join(models, ".staging", "crashed-0123456789ab"))).toBe(false);
      expect(left(path.join(models, ".partial", "abandoned"))).toBe(false);
      expect(left(path.join(models, ".partial", "resumable", "m.gguf.part"))).toBe(true);
      expect(left(path.join(home.dir, "adapters", ".trash", "a-0123456789ab"))).toBe(false);
      expect(left(takeover)).toBe(false);
      const swept = lines.filter((l) => l.msg === "removed a leftover from an earlier run");
      expect(swept.map((l) => [path.relative(home.dir, l.path as string), l.bytes]).sort()).toEqual(
        [
          [path.join(".locks", "x.lock.takeover"), 0],
          [path.join("adapters", ".trash", "a-0123456789ab"), 500],
          [path.join("models", ".partial", "abandoned"), 3010],
          [path.join("models", ".staging", "crashed-0123456789ab"), 2000],
          [path.join("models", ".trash", "old-model-0123456789ab"), 1000],
        ].sort(),
      );
    } finally {
      await stack.dispose();
      home.cleanup();
    }
  });
});

describe("one disk reservation for concurrent downloads", () => {
  it("refuses a second download that fits alone but not beside the first one's unwritten bytes, until the first ends", async () => {
    const dir = tempDir("llmlb-reserve-");
    const ledger = new DiskReservations();
    const size = 1024 ** 3;
    // Leave room for one and a half downloads above the reserve.
    const reserve = (await freeBytes(dir.dir)) - Math.round(1.5 * size);
    try {
      const first = await ledger.reserve(dir.dir, size, reserve, "model a");
      const refused = await ledger.reserve(dir.dir, size, reserve, "model b").catch((e: unknown) => e);
      expect(refused).toMatchObject({ reason: "INSUFFICIENT_DISK", metadata: { reserved_bytes: String(size) } });
      expect((refused as Error).message).toMatch(/not enough disk space for model b: .* 1\.0 GiB of it promised to other downloads running now/);
      // Bytes that reached the disk are no longer promised; a finished download promises nothing.
      first.consume(size / 2);
      expect(ledger.outstanding()).toBe(size / 2);
      first.release();
      const second = await ledger.reserve(dir.dir, size, reserve, "model b");
      second.release();
    } finally {
      dir.cleanup();
    }
  });
});

describe("disk reservations shared through the home", () => {
  it("counts another ledger's promise on the same home, shrinks it as its bytes are written, and drops it at release", async () => {
    const home = tempDir("llmlb-shared-reserve-");
    // Two ledgers on one home stand for two processes (each has its own identity in the file).
    const here = new DiskReservations(new SharedReservations(home.dir));
    const there = new DiskReservations(new SharedReservations(home.dir));
    const size = 1024 ** 3;
    const reserve = (await freeBytes(home.dir)) - Math.round(1.5 * size);
    try {
      const first = await there.reserve(home.dir, size, reserve, "model a");
      const refused = await here.reserve(home.dir, size, reserve, "model b").catch((e: unknown) => e);
      expect(refused).toMatchObject({ reason: "INSUFFICIENT_DISK", metadata: { reserved_bytes: String(size) } });

      // Written bytes show in the free space instead: the other side's promise shrinks with its next beat.
      first.consume((3 * size) / 4);
      await expect.poll(async () => {
        const second = await here.reserve(home.dir, size, reserve, "model b").catch(() => undefined);
        second?.release();
        return second !== undefined;
      }, { timeout: 10_000, interval: 200 }).toBe(true);

      first.release();
      await expect.poll(() => JSON.parse(fs.readFileSync(path.join(home.dir, ".locks", "disk", "reservations.json"), "utf8")).entries, { timeout: 5_000 }).toEqual([]);
    } finally {
      home.cleanup();
    }
  });
});
