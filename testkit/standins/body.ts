/**
 * File bodies: registration (hashing by streaming, never buffering disk files) and serving with
 * Range / If-Range / HEAD, backpressure, and the body faults of faults.ts.
 *
 * Fast path (no fault planned): chunks go straight from fs.createReadStream (1 MiB reads) or from
 * subarrays of the in-memory bytes to res.write with backpressure — per-chunk work only.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { BodyPlan, FaultTarget, Faults } from "./faults.js";
import { decideRange } from "./range.js";
import { entryOf } from "./request-log.js";

export interface FileBody {
  readonly size: number;
  /** hex sha256 of the content. */
  readonly sha256: string;
  /** hex git blob sha1 ("blob <size>\0" + content), when computed. */
  readonly gitSha1?: string;
  /** hex md5, when computed. */
  readonly md5?: string;
  /** In-memory content … */
  readonly data?: Uint8Array;
  /** … or a file on disk, streamed on every request. */
  readonly filePath?: string;
}

/** A file given by disk path, optionally with a precomputed sha256 (skips hashing a huge file). */
export interface DiskFile {
  path: string;
  sha256?: string;
}

export function gitBlobSha1(data: Uint8Array): string {
  return createHash("sha1").update(`blob ${data.byteLength}\0`).update(data).digest("hex");
}

export function blobFromBytes(data: Uint8Array): FileBody {
  return {
    size: data.byteLength,
    data,
    sha256: createHash("sha256").update(data).digest("hex"),
    gitSha1: gitBlobSha1(data),
    md5: createHash("md5").update(data).digest("hex"),
  };
}

const hashCache = new Map<string, { sha256: string; gitSha1: string; md5: string }>();

/**
 * Registers a disk file. Hashes are computed once by streaming (cached by path+size+mtime);
 * with `sha256` given and `allHashes` false, the file is not read at all.
 */
export async function blobFromFile(file: DiskFile, allHashes = true): Promise<FileBody> {
  const st = await stat(file.path);
  if (!st.isFile()) throw new Error(`not a file: ${file.path}`);
  const size = st.size;
  if (file.sha256 !== undefined && !allHashes) {
    if (!/^[0-9a-f]{64}$/.test(file.sha256)) throw new Error(`bad sha256 for ${file.path}`);
    return { size, sha256: file.sha256, filePath: file.path };
  }
  const key = `${file.path}\0${size}\0${st.mtimeMs}`;
  let h = hashCache.get(key);
  if (!h) {
    const s256 = createHash("sha256");
    const s1 = createHash("sha1").update(`blob ${size}\0`);
    const m5 = createHash("md5");
    for await (const chunk of createReadStream(file.path, { highWaterMark: 4 << 20 })) {
      s256.update(chunk as Buffer);
      s1.update(chunk as Buffer);
      m5.update(chunk as Buffer);
    }
    h = { sha256: s256.digest("hex"), gitSha1: s1.digest("hex"), md5: m5.digest("hex") };
    hashCache.set(key, h);
  }
  if (file.sha256 !== undefined && file.sha256 !== h.sha256) throw new Error(`sha256 given for ${file.path} does not match its content`);
  return { size, filePath: file.path, ...h };
}

export function isDiskFile(v: unknown): v is DiskFile {
  return typeof v === "object" && v !== null && !(v instanceof Uint8Array) && typeof (v as DiskFile).path === "string";
}

/** Registers bytes or a disk file. */
export async function toBlob(src: Uint8Array | DiskFile, allHashes = true): Promise<FileBody> {
  return src instanceof Uint8Array ? blobFromBytes(src) : blobFromFile(src, allHashes);
}

export interface SendBlobOptions {
  /** Quoted entity tag; If-Range is evaluated against it. Omitted (with ranges: false) like an llmlb router's blob route. */
  etag?: string;
  /** false: always the whole file with 200, Range ignored, no Accept-Ranges (an llmlb router's blob route). */
  ranges?: boolean;
  lastModified?: Date;
  contentType?: string;
  headers?: OutgoingHttpHeaders;
  faults?: Faults;
  target?: FaultTarget;
}

/** Serves a blob for GET/HEAD with 200 / 206 / 416, Accept-Ranges, Content-Length, ETag. */
export function sendBlob(req: IncomingMessage, res: ServerResponse, blob: FileBody, opts: SendBlobOptions): Promise<void> {
  const ranges = opts.ranges !== false;
  const headers: OutgoingHttpHeaders = {
    "Content-Type": opts.contentType ?? "application/octet-stream",
    ...(ranges ? { "Accept-Ranges": "bytes" } : {}),
    ...(opts.etag ? { ETag: opts.etag } : {}),
    ...(opts.lastModified ? { "Last-Modified": opts.lastModified.toUTCString() } : {}),
    ...opts.headers,
  };
  const decision = ranges
    ? decideRange({ range: req.headers.range, "if-range": req.headers["if-range"] as string | undefined }, blob.size, opts.etag ?? "", opts.lastModified)
    : ({ kind: "full" } as const);
  if (decision.kind === "unsatisfiable") {
    res.writeHead(416, { ...headers, "Content-Range": `bytes */${blob.size}`, "Content-Length": 0 });
    res.end();
    return Promise.resolve();
  }
  const start = decision.kind === "partial" ? decision.start : 0;
  const end = decision.kind === "partial" ? decision.end : blob.size - 1; // inclusive
  const length = end - start + 1;
  if (decision.kind === "partial") headers["Content-Range"] = `bytes ${start}-${end}/${blob.size}`;
  headers["Content-Length"] = length;
  const entry = entryOf(res);
  if (entry) entry.rangeStart = start;
  const status = decision.kind === "partial" ? 206 : 200;
  if (req.method === "HEAD" || length === 0) {
    res.writeHead(status, headers);
    res.end();
    return Promise.resolve();
  }
  const plan = opts.faults && opts.target ? opts.faults.planBody(opts.target, start, end + 1) : undefined;
  if (plan?.chunked) {
    // As a proxy that streams a file would: chunked, and the connection closes after it.
    delete headers["Content-Length"];
    headers.Connection = "close";
  }
  if (plan?.overstateBy) headers["Content-Length"] = length + plan.overstateBy;
  res.writeHead(status, headers);
  return streamBody(res, blob, start, end + 1, plan).catch(() => {
    res.destroy();
  });
}

const CHUNK = 1 << 20;

async function* chunksOf(blob: FileBody, start: number, endEx: number): AsyncGenerator<Uint8Array> {
  if (blob.data) {
    for (let p = start; p < endEx; p += CHUNK) yield blob.data.subarray(p, Math.min(endEx, p + CHUNK));
  } else if (blob.filePath !== undefined) {
    yield* createReadStream(blob.filePath, { start, end: endEx - 1, highWaterMark: CHUNK }) as AsyncIterable<Buffer>;
  }
}

/** Resolves after `ms` (Infinity: never) or as soon as the response closes. */
export function sleepOrClose(res: ServerResponse, ms: number): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      if (timer) clearTimeout(timer);
      res.off("close", done);
      resolve();
    };
    res.on("close", done);
    if (Number.isFinite(ms)) timer = setTimeout(done, Math.max(0, ms));
  });
}

function waitDrain(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

async function streamBody(res: ServerResponse, blob: FileBody, start: number, endEx: number, plan: BodyPlan | undefined): Promise<void> {
  const entry = entryOf(res);
  let flushed: Promise<void> = Promise.resolve();
  const write = async (buf: Uint8Array): Promise<void> => {
    const n = buf.byteLength;
    let ok: boolean;
    // Counted once the chunk reached the socket (write callback without error).
    flushed = new Promise<void>((resolve) => {
      ok = res.write(buf, (err) => {
        if (!err && entry) {
          entry.bytesSent += n;
          entry.fileBytes += n;
        }
        resolve();
      });
    });
    if (!ok!) await waitDrain(res);
  };

  let pos = start;
  if (!plan) {
    for await (const chunk of chunksOf(blob, start, endEx)) {
      if (res.destroyed) return;
      await write(chunk);
      pos += chunk.byteLength;
    }
    finish(res, pos, endEx);
    return;
  }

  const t0 = Date.now();
  let paced = 0;
  const slice = plan.bytesPerSecond ? Math.max(1, Math.min(64 << 10, Math.floor(plan.bytesPerSecond / 20))) : Infinity;
  let stallIdx = 0;
  for await (const raw of chunksOf(blob, start, endEx)) {
    if (res.destroyed) return;
    let chunk = raw;
    const cEnd = pos + chunk.byteLength;
    let copied = false;
    for (const at of plan.corrupt) {
      if (at < pos || at >= cEnd) continue;
      if (!copied) {
        chunk = Buffer.from(chunk); // never modify the registered bytes
        copied = true;
      }
      chunk[at - pos]! ^= 0xff;
    }
    let off = 0;
    while (off < chunk.byteLength) {
      const abs = pos + off;
      while (stallIdx < plan.stalls.length && plan.stalls[stallIdx]!.at === abs) {
        const s = plan.stalls[stallIdx++]!;
        res.flushHeaders();
        await sleepOrClose(res, s.ms);
        if (res.destroyed) return;
      }
      if (plan.drop === abs) {
        await flushed;
        cut(res);
        return;
      }
      let n = chunk.byteLength - off;
      if (plan.drop !== undefined) n = Math.min(n, plan.drop - abs);
      if (stallIdx < plan.stalls.length) n = Math.min(n, plan.stalls[stallIdx]!.at - abs);
      if (plan.bytesPerSecond) {
        n = Math.min(n, slice);
        const due = t0 + (paced / plan.bytesPerSecond) * 1000;
        const wait = due - Date.now();
        if (wait > 0) {
          await sleepOrClose(res, wait);
          if (res.destroyed) return;
        }
        paced += n;
      }
      await write(chunk.subarray(off, off + n));
      if (res.destroyed) return;
      off += n;
    }
    pos = cEnd;
  }
  finish(res, pos, endEx, plan.overstateBy !== undefined);
}

function finish(res: ServerResponse, pos: number, endEx: number, lengthOverstated = false): void {
  if (res.destroyed) return;
  if (pos < endEx || lengthOverstated) {
    // The file shrank under us (never pretend the body is complete), or the fault says more bytes follow.
    cut(res);
    return;
  }
  res.end();
}

/** Cuts the connection after what was written so far: flush headers + data, FIN, then destroy. */
export function cut(res: ServerResponse): void {
  res.flushHeaders();
  const sock = res.socket;
  if (!sock) {
    res.destroy();
    return;
  }
  sock.end();
  setTimeout(() => sock.destroy(), 1000).unref();
}
