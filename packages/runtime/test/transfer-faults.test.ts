import fs from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";
import { Code } from "@connectrpc/connect";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { captureLogger, entry, failure, listTree, openStack, payload, recorder, sha256, hfWorld } from "./resolver-world.js";
import { Intervals } from "../src/transfer/intervals.js";

const SIZE = 4 << 20;
const DATA = payload(SIZE, 42);
const SHA = sha256(DATA);
const FILE = "model.gguf";

describe("the transfer engine against a misbehaving CDN", () => {
  const world = hfWorld("faults", { [FILE]: DATA });
  const cdnGets = (repo: string) => world.hf.requests.filter((r) => r.host === "cdn" && r.repoId === repo && r.method === "GET");
  afterEach(() => world.hf.clearFaults());

  it.each([1, 4])("resumes when the connection drops at 60%%; less than 10%% of the file is sent twice (%i connection(s))", async (connections) => {
    const repo = await world.newRepo();
    world.hf.dropAt(Math.floor(SIZE * 0.6), { host: "cdn" });
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url, LLMLB_DOWNLOAD_CONNECTIONS: String(connections) }, models: [entry("m", repo, FILE)] });
    try {
      const result = await stack.resolver.resolve({ modelId: "m" });
      expect(result).toMatchObject({ sha256: SHA, sizeBytes: SIZE });
      const served = world.hf.bytesServed(repo, FILE);
      expect(served).toBeGreaterThanOrEqual(SIZE);
      expect(served - SIZE).toBeLessThan(SIZE * 0.1);
      const gets = cdnGets(repo);
      expect(gets.some((r) => r.aborted)).toBe(true);
      expect(gets.some((r) => (r.rangeStart ?? 0) >= SIZE * 0.5 && r.headers["if-range"] === `"${SHA}"`)).toBe(true);
    } finally {
      await stack.dispose();
    }
  });

  it("installs a complete body whose Content-Length claimed more, without asking again for bytes past the end", async () => {
    const repo = await world.newRepo();
    world.hf.overstateLength(5000, { host: "cdn" });
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url, LLMLB_DOWNLOAD_CONNECTIONS: "1" }, models: [entry("m", repo, FILE)] });
    try {
      expect(await stack.resolver.resolve({ modelId: "m" })).toMatchObject({ sha256: SHA, sizeBytes: SIZE });
      expect(world.hf.bytesServed(repo, FILE)).toBe(SIZE);
      expect(cdnGets(repo)).toHaveLength(1);
    } finally {
      await stack.dispose();
    }
  });

  it("resumes a chunked body cut mid-way (undici's parser error) from where it stopped", async () => {
    const repo = await world.newRepo();
    world.hf.chunked({ host: "cdn" });
    world.hf.dropAt(Math.floor(SIZE * 0.6), { host: "cdn" });
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url, LLMLB_DOWNLOAD_CONNECTIONS: "1" }, models: [entry("m", repo, FILE)] });
    try {
      expect(await stack.resolver.resolve({ modelId: "m" })).toMatchObject({ sha256: SHA, sizeBytes: SIZE });
      expect(world.hf.bytesServed(repo, FILE) - SIZE).toBeLessThan(SIZE * 0.1);
      expect(cdnGets(repo).some((r) => (r.rangeStart ?? 0) >= SIZE * 0.5)).toBe(true);
    } finally {
      await stack.dispose();
    }
  });

  it("names the file once in the retry warning (a JSON line with one \"file\" key)", async () => {
    const repo = await world.newRepo();
    world.hf.dropAt(Math.floor(SIZE * 0.6), { host: "cdn" });
    const raw: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        raw.push(...chunk.toString("utf8").split("\n").filter(Boolean));
        done();
      },
    });
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url, LLMLB_DOWNLOAD_CONNECTIONS: "1" }, models: [entry("m", repo, FILE)], logger: pino({ level: "info" }, sink) });
    try {
      await stack.resolver.resolve({ modelId: "m" });
      const retries = raw.filter((l) => l.includes("download interrupted; retrying from where it stopped"));
      expect(retries).toHaveLength(1);
      expect(retries[0]!.match(/"file":/g)).toHaveLength(1);
      expect(JSON.parse(retries[0]!)).toMatchObject({ level: 40, file: FILE, at: Math.floor(SIZE * 0.6), attempt: 1 });
    } finally {
      await stack.dispose();
    }
  });

  it("gives up on a connection that trickles (under 1 KiB/s over the stall window, never silent long enough to stall) and resumes on a fresh one", async () => {
    const repo = await world.newRepo();
    world.hf.throttle(400, { host: "cdn", times: 1 });
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url, LLMLB_STALL_TIMEOUT: "1", LLMLB_DOWNLOAD_CONNECTIONS: "1" }, models: [entry("m", repo, FILE)] });
    try {
      expect(await stack.resolver.resolve({ modelId: "m" })).toMatchObject({ sha256: SHA, sizeBytes: SIZE });
      const gets = cdnGets(repo);
      expect(gets).toHaveLength(2);
      expect(gets[0]!.aborted).toBe(true);
      expect(gets[1]!.rangeStart).toBeGreaterThan(0);
    } finally {
      await stack.dispose();
    }
  });

  it("retries a stalled transfer from where it stopped", async () => {
    const repo = await world.newRepo();
    world.hf.stall(Math.floor(SIZE * 0.3), "forever", { host: "cdn" });
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url, LLMLB_STALL_TIMEOUT: "1", LLMLB_DOWNLOAD_CONNECTIONS: "1" }, models: [entry("m", repo, FILE)] });
    try {
      const started = Date.now();
      expect(await stack.resolver.resolve({ modelId: "m" })).toMatchObject({ sha256: SHA });
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(world.hf.bytesServed(repo, FILE) - SIZE).toBeLessThan(SIZE * 0.1);
      expect(cdnGets(repo).map((r) => r.rangeStart)).toEqual([0, Math.floor(SIZE * 0.3)]);
    } finally {
      await stack.dispose();
    }
  });

  it("fails with CHECKSUM_MISMATCH on a corrupted byte, installs nothing and removes the partial file", async () => {
    const repo = await world.newRepo();
    world.hf.corruptByte(123_456, { host: "cdn" });
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url }, models: [entry("m", repo, FILE)] });
    try {
      const err = await failure(stack.resolver.resolve({ modelId: "m" }));
      expect(err).toMatchObject({ code: Code.DataLoss, reason: "CHECKSUM_MISMATCH" });
      expect(err.message).toContain(`expected ${SHA}`);
      expect(await stack.store.listModels()).toEqual([]);
      expect(fs.existsSync(stack.store.modelDir("m"))).toBe(false);
      expect(listTree(stack.store.models.partialDir("m")).filter((p) => p.endsWith(".part"))).toEqual([]);
    } finally {
      await stack.dispose();
    }
  });

  it("retries 5xx answers with backoff", async () => {
    const repo = await world.newRepo();
    world.hf.failStatus(503, 2, { host: "cdn" });
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url, LLMLB_DOWNLOAD_CONNECTIONS: "1" }, models: [entry("m", repo, FILE)] });
    try {
      expect(await stack.resolver.resolve({ modelId: "m" })).toMatchObject({ sha256: SHA });
      expect(cdnGets(repo).map((r) => r.status)).toEqual([503, 503, 206]);
    } finally {
      await stack.dispose();
    }
  });

  it("gives up after the configured retries with SOURCE_UNAVAILABLE naming the host", async () => {
    const repo = await world.newRepo();
    world.hf.failStatus(500, "always", { host: "cdn" });
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url, LLMLB_DOWNLOAD_RETRIES: "2" }, models: [entry("m", repo, FILE)] });
    try {
      const err = await failure(stack.resolver.resolve({ modelId: "m" }));
      expect(err).toMatchObject({ code: Code.Unavailable, reason: "SOURCE_UNAVAILABLE" });
      expect(err.message).toMatch(/failed 3 times in a row/);
      expect(cdnGets(repo)).toHaveLength(3);
    } finally {
      await stack.dispose();
    }
  });

  it("fails with INSUFFICIENT_DISK before writing a byte when the reserve cannot be kept", async () => {
    const repo = await world.newRepo();
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url, LLMLB_DISK_RESERVE: "1000000TB" }, models: [entry("m", repo, FILE)] });
    try {
      const err = await failure(stack.resolver.resolve({ modelId: "m" }));
      expect(err).toMatchObject({ code: Code.ResourceExhausted, reason: "INSUFFICIENT_DISK" });
      expect(err.message).toMatch(/needs 4\.0 MiB \(and 1\.0 MiB for its records\) and .* must stay free .* but only .* is free on the disk of .*: free .* more \(llmlb-node ls lists the models, llmlb-node rm <id> deletes one\) or lower LLMLB_DISK_RESERVE$/);
      expect(Number(err.metadata.needed_bytes)).toBe(SIZE);
      expect(Number(err.metadata.free_bytes)).toBeGreaterThan(0);
      expect(cdnGets(repo)).toEqual([]);
      expect(fs.existsSync(stack.store.models.partialDir("m"))).toBe(false);
    } finally {
      await stack.dispose();
    }
  });

  it("uses several ranged connections for a large file and hashes it while it arrives", async () => {
    const repo = "faults/large";
    const big = payload(24 << 20, 9);
    await world.hf.addRepo(repo, { files: { [FILE]: big } });
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url, LLMLB_DOWNLOAD_CONNECTIONS: "4" }, models: [entry("big", repo, FILE)] });
    try {
      expect(await stack.resolver.resolve({ modelId: "big" })).toMatchObject({ sha256: sha256(big), sizeBytes: big.length });
      const gets = cdnGets(repo);
      expect(gets.length).toBeGreaterThanOrEqual(4);
      expect(new Set(gets.map((r) => r.rangeStart)).size).toBe(gets.length);
      expect(world.hf.bytesServed(repo, FILE)).toBe(big.length);
      // The hub was asked once per piece at most; the CDN URL is reused while it is valid.
      expect(world.hf.requests.filter((r) => r.host === "hub" && r.repoId === repo && r.method === "GET").length).toBeLessThanOrEqual(2);
    } finally {
      await stack.dispose();
    }
  });

  it("asks the hub for a fresh CDN URL when the signed one expired mid-download", async () => {
    const repo = await world.newRepo();
    world.hf.throttle(8 << 20, { host: "cdn" });
    world.hf.dropAt(Math.floor(SIZE * 0.5), { host: "cdn" });
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url, LLMLB_DOWNLOAD_CONNECTIONS: "1" }, models: [entry("m", repo, FILE)] });
    try {
      const rec = recorder();
      let expired = false;
      const result = await stack.resolver.resolve({ modelId: "m" }, {
        onEvent: (e) => {
          rec.onEvent(e);
          if (!expired && e.type === "progress" && e.progress.completedBytes > 0) {
            expired = true;
            world.hf.expireCdnUrls();
          }
        },
      });
      expect(result.sha256).toBe(SHA);
      expect(cdnGets(repo).map((r) => r.status)).toEqual([206, 403, 206]);
      expect(world.hf.bytesServed(repo, FILE) - SIZE).toBeLessThan(SIZE * 0.1);
    } finally {
      await stack.dispose();
    }
  });

  it("keeps the partial file of a cancelled download and resumes it later", async () => {
    const repo = await world.newRepo();
    world.hf.throttle(4 << 20, { host: "cdn" });
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url, LLMLB_DOWNLOAD_CONNECTIONS: "1" }, models: [entry("m", repo, FILE)] });
    try {
      const controller = new AbortController();
      // What the node's metrics and dashboard see: the events of the node, up to the cancel.
      let lastReported = 0;
      let ended = false;
      const off = stack.events.on((e) => {
        if (e.type === "transfer-cancelled") ended = true;
        if (e.type === "transfer-progress" && !ended) lastReported = e.progress.completedBytes;
      });
      const cancelled = stack.resolver.resolve({ modelId: "m" }, {
        signal: controller.signal,
        onEvent: (e) => {
          // Not at once: bytes keep arriving between two throttled updates.
          if (e.type === "progress" && e.progress.completedBytes >= SIZE / 4) setTimeout(() => controller.abort(), 100);
        },
      });
      expect(await failure(cancelled)).toMatchObject({ code: Code.Canceled, reason: "CANCELLED" });
      await expect.poll(() => stack.resolver.inFlight()).toEqual([]);
      const part = path.join(stack.store.models.partialDir("m"), `${FILE}.part`);
      expect(fs.existsSync(part)).toBe(true);
      const before = world.hf.bytesServed(repo, FILE);
      expect(before).toBeLessThan(SIZE);
      world.hf.throttle(null);
      expect(await stack.resolver.resolve({ modelId: "m" })).toMatchObject({ sha256: SHA });
      expect(world.hf.bytesServed(repo, FILE) - SIZE).toBeLessThan(SIZE * 0.1);
      // The cancelled transfer's last progress counts every byte it kept (what metrics and the dashboard show).
      off();
      expect(ended).toBe(true);
      expect(lastReported).toBe(cdnGets(repo).at(-1)!.rangeStart);
    } finally {
      await stack.dispose();
    }
  });
  /** A download of model "m" cancelled halfway (its partial file and record kept), on a stack logging into `lines`. */
  async function halfDownloaded() {
    const repo = await world.newRepo();
    world.hf.throttle(4 << 20, { host: "cdn" });
    const { logger, lines } = captureLogger();
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url, LLMLB_DOWNLOAD_CONNECTIONS: "1" }, models: [entry("m", repo, FILE)], logger });
    const controller = new AbortController();
    const cancelled = stack.resolver.resolve({ modelId: "m" }, {
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === "progress" && e.progress.completedBytes >= SIZE / 2) controller.abort();
      },
    });
    await failure(cancelled);
    await expect.poll(() => stack.resolver.inFlight()).toEqual([]);
    return { repo, stack, lines, part: path.join(stack.store.models.partialDir("m"), `${FILE}.part`) };
  }

  it("resumes a partial file cut shorter than its record from where the file ends, fetches the gap, logs what it dropped, and verifies", async () => {
    const { repo, stack, lines, part } = await halfDownloaded();
    try {
      const recorded = (JSON.parse(fs.readFileSync(`${part}.json`, "utf8")) as { done: Array<[number, number]> }).done;
      const recordedEnd = recorded.at(-1)![1];
      const cut = 300_000;
      expect(recordedEnd).toBeGreaterThan(cut * 2);
      fs.truncateSync(part, cut);
      world.hf.throttle(null);
      const gets = cdnGets(repo).length;

      expect(await stack.resolver.resolve({ modelId: "m" })).toMatchObject({ sha256: SHA, sizeBytes: SIZE });
      expect(cdnGets(repo).slice(gets).map((r) => r.rangeStart ?? 0)).toEqual([cut]);
      const dropped = lines.filter((l) => l.msg?.toString().includes("less than its record"));
      expect(dropped).toHaveLength(1);
      expect(dropped[0]).toMatchObject({ level: 40, file: FILE, part: part, part_bytes: cut, recorded_bytes: recordedEnd, dropped_bytes: recordedEnd - cut });
      expect(lines.some((l) => l.reason === "CHECKSUM_MISMATCH" || /CHECKSUM_MISMATCH/.test(String(l.msg)))).toBe(false);
    } finally {
      await stack.dispose();
    }
  });

  it("says so when a partial file is gone but its record is not, and downloads from the first byte", async () => {
    const { repo, stack, lines, part } = await halfDownloaded();
    try {
      const recorded = new Intervals((JSON.parse(fs.readFileSync(`${part}.json`, "utf8")) as { done: Array<[number, number]> }).done).total;
      fs.rmSync(part);
      world.hf.throttle(null);
      const gets = cdnGets(repo).length;

      expect(await stack.resolver.resolve({ modelId: "m" })).toMatchObject({ sha256: SHA, sizeBytes: SIZE });
      expect(cdnGets(repo).slice(gets).map((r) => r.rangeStart ?? 0)).toEqual([0]);
      const gone = lines.filter((l) => l.msg?.toString().includes("is gone, though its record has"));
      expect(gone).toHaveLength(1);
      expect(gone[0]).toMatchObject({ level: 40, file: FILE, part, recorded_bytes: recorded });
    } finally {
      await stack.dispose();
    }
  });
});
