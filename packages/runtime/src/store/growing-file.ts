import fs from "node:fs/promises";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { LlmlbError } from "../errors/index.js";
import type { LiveFile, LiveFiles } from "../transfer/live-files.js";
import type { ByteRange, Store } from "./store.js";

export interface FollowOptions {
  /** File name; the first file of the download when absent. */
  file?: string;
  /** The download has not registered its files yet: wait this long for it (ms). */
  startWaitMs: number;
  /** No new byte for this long ends the stream with an error (ms). */
  stallMs: number;
  signal: AbortSignal;
}

/** A file being downloaded here: its announced size and sha256, and a reader of any range of it. */
export interface GrowingFile {
  name: string;
  size: number;
  /** What the file's bytes must hash to (from the source); the follower verifies it too. */
  sha256: string;
  /** Bytes start..end (inclusive) as they are verified. */
  open(range?: ByteRange): Readable;
}

const POLL_MS = 200;
const CHUNK = 1 << 20;
/** How long a reader whose file was just installed waits for the store to list it. */
const INSTALL_WAIT_MS = 10_000;

/**
 * A model file this node is downloading right now, for a peer that follows the download instead
 * of asking the hub. Only verified bytes are handed out: the prefix the download's own transfer
 * has made durable and fed, in order, into its sha256 (asked of the transfer engine, no second
 * hashing pass); the last byte only once the whole file matched its sha256. A download that fails
 * (checksum mismatch included), starts the file over, is abandoned or stalls ends the stream with
 * an error mid-body, so a follower never takes it for a complete file. Once installed, the file
 * is served from the store. Undefined when no download of the model is running here.
 */
export async function followModelFile(store: Store, downloads: LiveFiles, id: string, options: FollowOptions): Promise<GrowingFile | undefined> {
  const partialDir = store.models.partialDir(id);
  const deadline = Date.now() + options.startWaitMs;
  for (;;) {
    const files = downloads.get(partialDir);
    const live = files && (options.file === undefined ? files[0] : files.find((f) => f.name === options.file));
    if (live && live.size !== undefined && live.sha256 && !live.failure) {
      const { size, sha256 } = live;
      return {
        name: live.name,
        size,
        sha256,
        open: (range) => {
          const { start, end } = clampRange(range, size, live.name, id);
          return Readable.from(follow(store, id, live, start, end + 1, options));
        },
      };
    }
    // It may have been installed while we waited for the download to start: serve the installed file.
    const installed = await store.getModel(id);
    const file = installed && (options.file === undefined ? installed.files[0] : installed.files.find((f) => f.name === options.file));
    if (installed && file) {
      return {
        name: file.name,
        size: file.size,
        sha256: file.sha256,
        open: (range) => {
          const { start, end } = clampRange(range, file.size, file.name, id);
          return Readable.from(installedBytes(store, id, file.name, start, end + 1));
        },
      };
    }
    if (Date.now() >= deadline) return undefined;
    await sleep(POLL_MS, undefined, { signal: options.signal });
  }
}

function clampRange(range: ByteRange | undefined, size: number, name: string, id: string): { start: number; end: number } {
  const start = range?.start ?? 0;
  const end = Math.min(range?.end ?? size - 1, size - 1);
  if (start > end) throw new LlmlbError("INVALID_ARGUMENT", `range ${start}-${end} is outside ${name} (${size} bytes)`, { id });
  return { start, end };
}

async function* follow(store: Store, id: string, live: LiveFile, start: number, end: number, options: FollowOptions): AsyncGenerator<Buffer> {
  const epoch = live.epoch;
  const check = () => {
    options.signal.throwIfAborted();
    if (live.epoch !== epoch) throw new Error(`the download of ${id} here started ${live.name} over`);
    if (live.failure) throw new Error(`the download of ${id} here failed: ${live.failure.message}`);
  };
  let pos = start;
  let handle: fs.FileHandle | undefined;
  try {
    while (pos < end) {
      check();
      const upTo = Math.min(live.verifiedBytes, end);
      if (upTo <= pos) {
        if (Date.now() - live.lastProgressAt > options.stallMs) {
          throw new Error(`the download of ${id} here made no progress for ${options.stallMs / 1000} s`);
        }
        await live.changed(POLL_MS, options.signal);
        continue;
      }
      handle ??= await fs.open(live.partPath, "r").catch(() => undefined);
      if (!handle) {
        // Verified and moved into the store between the last look and now: the rest comes from there.
        yield* installedBytes(store, id, live.name, pos, end);
        return;
      }
      while (pos < upTo) {
        const buf = Buffer.allocUnsafe(Math.min(CHUNK, upTo - pos));
        const { bytesRead } = await handle.read(buf, 0, buf.length, pos);
        check(); // a restart may have truncated what was just read
        if (bytesRead <= 0) throw new Error(`the partial file of ${id} is shorter than its verified bytes`);
        pos += bytesRead;
        yield buf.subarray(0, bytesRead);
      }
    }
  } finally {
    await handle?.close();
  }
}

/** Bytes [start, end) of an installed file, waiting briefly for an install that is finishing. */
async function* installedBytes(store: Store, id: string, name: string, start: number, end: number): AsyncGenerator<Buffer> {
  const deadline = Date.now() + INSTALL_WAIT_MS;
  while (!(await store.getModel(id))) {
    if (Date.now() >= deadline) throw new Error(`the download of ${id} here was abandoned`);
    await sleep(POLL_MS);
  }
  const rest = await store.openModelFile(id, { file: name, range: { start, end: end - 1 } });
  for await (const chunk of rest.stream as AsyncIterable<Buffer>) yield chunk;
}
