import fs from "node:fs/promises";
import path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { LlmlbError } from "../errors/index.js";
import { Intervals } from "../transfer/intervals.js";
import { readPartialState } from "./partial-state.js";
import type { ByteRange, Store } from "./store.js";

export interface FollowOptions {
  /** File name; the first (by name) of the partial files when absent. */
  file?: string;
  /** The download has not written its first state yet: wait this long for it (ms). */
  startWaitMs: number;
  /** No new byte for this long ends the stream with an error (ms). */
  stallMs: number;
  signal: AbortSignal;
}

/** A file being downloaded here: its announced size and sha256, and a reader of any range of it. */
export interface GrowingFile {
  name: string;
  size: number;
  /** What the file's bytes must hash to (from the source); the follower verifies it. */
  sha256: string;
  /** Bytes start..end (inclusive) as they land. */
  open(range?: ByteRange): Readable;
}

const POLL_MS = 200;
const CHUNK = 1 << 20;

/**
 * A model file this node is downloading right now, for a peer that follows the download instead
 * of asking the hub: bytes as the file's contiguous written prefix grows (read from the .part
 * file's sidecar, which the transfer saves every second), then from the installed file once it is
 * verified and in place. Never complete unless the whole file is: a download that is abandoned or
 * stalls ends the stream with an error mid-body (and the follower verifies the sha256 of
 * everything it got). Undefined when no download of the model is running here.
 */
export async function followModelFile(store: Store, id: string, options: FollowOptions): Promise<GrowingFile | undefined> {
  const partialDir = store.models.partialDir(id);
  const deadline = Date.now() + options.startWaitMs;
  for (;;) {
    const found = await findPartial(partialDir, options.file);
    if (found?.state.size !== undefined && found.state.sha256) {
      const { size, sha256 } = found.state;
      return {
        name: found.name,
        size,
        sha256,
        open: (range) => {
          const start = range?.start ?? 0;
          const end = Math.min(range?.end ?? size - 1, size - 1);
          if (start > end) throw new LlmlbError("INVALID_ARGUMENT", `range ${start}-${end} is outside ${found.name} (${size} bytes)`, { id });
          return Readable.from(follow(store, id, found.name, found.partPath, found.statePath, start, end + 1, options));
        },
      };
    }
    // It may have been installed while we waited for its first record: serve the installed file.
    const installed = await store.getModel(id);
    const file = installed && (options.file === undefined ? installed.files[0] : installed.files.find((f) => f.name === options.file));
    if (installed && file) {
      return {
        name: file.name,
        size: file.size,
        sha256: file.sha256,
        open: (range) => {
          const stream = new PassThrough();
          store.openModelFile(id, { file: file.name, ...(range ? { range } : {}) }).then(
            (read) => read.stream.on("error", (err) => stream.destroy(err)).pipe(stream),
            (err: unknown) => stream.destroy(err as Error),
          );
          return stream;
        },
      };
    }
    if (Date.now() >= deadline) return undefined;
    await sleep(POLL_MS, undefined, { signal: options.signal });
  }
}

async function findPartial(dir: string, file: string | undefined) {
  const names = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith(".part.json")).sort();
  const sidecar = file === undefined ? names[0] : names.find((n) => n === `${file}.part.json`);
  if (!sidecar) return undefined;
  const statePath = path.join(dir, sidecar);
  const state = await readPartialState(statePath);
  if (!state) return undefined;
  return { name: sidecar.slice(0, -".part.json".length), partPath: statePath.slice(0, -".json".length), statePath, state };
}

async function* follow(
  store: Store, id: string, name: string, partPath: string, statePath: string, start: number, end: number, options: FollowOptions,
): AsyncGenerator<Buffer> {
  let pos = start;
  let lastProgress = Date.now();
  const handle = await fs.open(partPath, "r").catch(() => undefined);
  if (!handle) {
    // Installed (or discarded) between the look at its sidecar and now.
    if (!(await store.getModel(id))) throw new Error(`the download of ${id} here was abandoned`);
    const rest = await store.openModelFile(id, { file: name, range: { start, end: end - 1 } });
    for await (const chunk of rest.stream as AsyncIterable<Buffer>) yield chunk;
    return;
  }
  try {
    while (pos < end) {
      options.signal.throwIfAborted();
      const state = await readPartialState(statePath);
      if (!state) {
        // The sidecar is gone: the file was installed (read the rest from the store), or discarded.
        const installed = await store.getModel(id);
        if (!installed) throw new Error(`the download of ${id} here was abandoned`);
        const rest = await store.openModelFile(id, { file: name, range: { start: pos, end: end - 1 } });
        for await (const chunk of rest.stream as AsyncIterable<Buffer>) yield chunk;
        return;
      }
      const prefix = Math.min(new Intervals(state.done).prefixEnd, end);
      if (prefix > pos) {
        while (pos < prefix) {
          const buf = Buffer.allocUnsafe(Math.min(CHUNK, prefix - pos));
          const { bytesRead } = await handle.read(buf, 0, buf.length, pos);
          if (bytesRead <= 0) throw new Error(`the partial file of ${id} is shorter than its record`);
          pos += bytesRead;
          yield buf.subarray(0, bytesRead);
        }
        lastProgress = Date.now();
        continue;
      }
      if (Date.now() - lastProgress > options.stallMs) throw new Error(`the download of ${id} here made no progress for ${options.stallMs / 1000} s`);
      await sleep(POLL_MS, undefined, { signal: options.signal });
    }
  } finally {
    await handle.close();
  }
}
