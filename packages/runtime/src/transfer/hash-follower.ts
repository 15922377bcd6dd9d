import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import { Worker } from "node:worker_threads";

/**
 * sha256 of a file that is being written, computed as its contiguous prefix grows: the transfer
 * reports how far the file is complete with advance(), finish() returns the digest. Large files
 * are hashed on a worker thread reading the freshly written pages back from the page cache, so
 * verification overlaps the download instead of following it; small ones are hashed at the end.
 * `onHashed` hears how far the hash has consumed the file (what a follower of the download may read).
 */
export interface HashFollower {
  advance(upTo: number): void;
  finish(size: number): Promise<string>;
  close(): void;
}

/** Files from this size on are hashed on a worker thread while they download. */
export const WORKER_HASH_MIN_BYTES = 16 * 1024 * 1024;

// Plain CommonJS so it runs the same from src (vitest, tsx) and from dist.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const crypto = require("node:crypto");
const fd = fs.openSync(workerData.path, "r");
const hash = crypto.createHash("sha256");
const buf = Buffer.allocUnsafe(128 << 10);
let hashed = 0, target = 0, finishing = false, failed = false;
parentPort.on("message", (msg) => {
  if (failed) return;
  if (msg.type === "advance") target = Math.max(target, msg.upTo);
  else if (msg.type === "finish") { target = msg.size; finishing = true; }
  try {
    while (hashed < target) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, target - hashed), hashed);
      if (n <= 0) throw new Error("the file ended at byte " + hashed + " while hashing");
      hash.update(n === buf.length ? buf : buf.subarray(0, n));
      hashed += n;
    }
    if (finishing) { fs.closeSync(fd); parentPort.postMessage({ type: "digest", hex: hash.digest("hex") }); }
    else parentPort.postMessage({ type: "hashed", upTo: hashed });
  } catch (err) {
    failed = true;
    parentPort.postMessage({ type: "error", message: String(err && err.message || err) });
  }
});
`;

class WorkerHashFollower implements HashFollower {
  private readonly worker: Worker;
  private readonly result: Promise<string>;
  private lastSent = 0;

  constructor(file: string, onHashed: (upTo: number) => void) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path: file } });
    this.result = new Promise<string>((resolve, reject) => {
      this.worker.on("message", (msg: { type: string; hex?: string; upTo?: number; message?: string }) => {
        if (msg.type === "hashed") onHashed(msg.upTo!);
        else if (msg.type === "digest") resolve(msg.hex!);
        else reject(new Error(msg.message));
      });
      this.worker.on("error", reject);
      this.worker.on("exit", (code) => reject(new Error(`hash worker exited (${code})`)));
    });
    this.result.catch(() => undefined);
  }

  advance(upTo: number): void {
    // A message per MiB is plenty; the worker reads in 128 KiB blocks (they stay in the CPU cache while hashed).
    if (upTo - this.lastSent < 1 << 20) return;
    this.lastSent = upTo;
    this.worker.postMessage({ type: "advance", upTo });
  }

  async finish(size: number): Promise<string> {
    this.worker.postMessage({ type: "finish", size });
    try {
      return await this.result;
    } finally {
      this.close();
    }
  }

  close(): void {
    void this.worker.terminate();
  }
}

/** sha256 of the first `size` bytes of a file; a file shorter than that is an error. */
export async function sha256OfFile(file: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  const handle = await fs.open(file, "r");
  try {
    const buf = Buffer.allocUnsafe(Math.min(Math.max(size, 1), 4 << 20));
    for (let pos = 0; pos < size; ) {
      const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead <= 0) throw new Error(`the file ended at byte ${pos} while hashing`);
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return hash.digest("hex");
}

class InlineHashFollower implements HashFollower {
  constructor(private readonly file: string) {}

  advance(): void {}

  finish(size: number): Promise<string> {
    return sha256OfFile(this.file, size);
  }

  close(): void {}
}

export function createHashFollower(file: string, expectedSize: number | undefined, onHashed: (upTo: number) => void = () => {}): HashFollower {
  return expectedSize !== undefined && expectedSize >= WORKER_HASH_MIN_BYTES ? new WorkerHashFollower(file, onHashed) : new InlineHashFollower(file);
}
