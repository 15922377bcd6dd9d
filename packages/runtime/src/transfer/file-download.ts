import { defaultMaxListeners, setMaxListeners } from "node:events";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { LlmlbError, isAbortError, isLlmlbError } from "../errors/index.js";
import type { Logger } from "../logging/index.js";
import type { RemoteFile } from "../plugin/contract.js";
import { createHashFollower, type HashFollower } from "./hash-follower.js";
import type { LiveFile } from "./live-files.js";
import { discardBody, headerValue, type HttpClient, type OpenResponse } from "./http-client.js";
import { ConnectionEndedError, ExpiredRedirectError, MIN_BYTES_PER_SECOND, RetryableHttpError, TooSlowError, httpStatusError } from "./http-errors.js";
import { Intervals } from "./intervals.js";
import { readPartialState, samePartial, writePartialState, type PartialState } from "../store/partial-state.js";
import { DiskWriteError, PositionalWriter } from "./positional-writer.js";
import { backoffMs, isRetryableNetworkError } from "./retry.js";

/** Files from this size on are fetched over several ranged connections (when allowed and supported). */
export const MULTI_CONNECTION_MIN_BYTES = 4 * 1024 * 1024;
const MIN_PIECE = 1 << 20;
const MAX_PIECE = 16 << 20;
/** Dirty bytes after which writeback is started, so the final fsync has little left to do. */
const SYNC_EVERY_BYTES = 64 << 20;
/**
 * How often the record of the bytes written is saved (after an fdatasync of them). A crash loses
 * what arrived since the last save: at 1 s, four connections at 24 MiB/s each lost up to ~90 MiB a
 * kill, as much as starting over.
 */
const STATE_SAVE_MS = 250;

export interface FileTransferOptions {
  http: HttpClient;
  signal: AbortSignal;
  connections: number;
  /** Consecutive failures without progress before giving up. */
  retries: number;
  stallMs: number;
  retryBaseMs: number;
  /** A server asking to wait longer than this fails the transfer with RATE_LIMITED at once. */
  maxRetryAfterMs: number;
  /** Bound to the file already (`file`: its name): the lines written here do not repeat it. */
  logger: Logger;
  /** Bytes newly on disk (negative when a restart discards some). */
  onBytes: (n: number) => void;
  /** The file starts over from its first byte, and why. */
  onRestart?: (reason: string) => void;
  /** The size became known from the server before any byte is written; may throw INSUFFICIENT_DISK. */
  onSizeLearned: (size: number) => Promise<void>;
  /** When the source did not announce the size: the most the server may send (or announce). */
  maxUnknownSizeBytes: number;
  /** Where readers of the growing file learn how far it is verified (durable and hashed). */
  live?: LiveFile;
}

export interface DownloadedFile {
  name: string;
  /** The verified .part file (the store moves it into place). */
  path: string;
  size: number;
  sha256: string;
}

/** A file about to be downloaded, with what an earlier run left of it. */
export interface PreparedFile {
  file: RemoteFile;
  partPath: string;
  statePath: string;
  state: PartialState;
  /** Bytes already on disk from an earlier run. */
  resumedBytes: number;
  /** Those bytes came from another URL than this file's (e.g. a peer of the fleet, now the hub). */
  fromElsewhere: boolean;
}

export async function prepareFile(file: RemoteFile, partialDir: string, revision?: string, logger?: Logger): Promise<PreparedFile> {
  const partPath = path.join(partialDir, `${file.name}.part`);
  const statePath = `${partPath}.json`;
  const saved = await readPartialState(statePath);
  const fresh: PartialState = {
    schema: 1,
    url: file.url,
    done: [],
    ...(file.size !== undefined ? { size: file.size } : {}),
    ...(file.sha256 ? { sha256: file.sha256 } : {}),
    ...(revision ? { revision } : {}),
  };
  const onDisk = saved && samePartial(saved, file) ? await fsp.stat(partPath).catch(() => undefined) : undefined;
  const usable = saved && onDisk?.isFile();
  const recordedWithoutFile = saved && samePartial(saved, file) && !onDisk ? new Intervals(saved.done).total : 0;
  if (recordedWithoutFile > 0) {
    logger?.warn(
      { part: partPath, recorded_bytes: recordedWithoutFile },
      `the partial file ${partPath} is gone, though its record has ${recordedWithoutFile} bytes; the download starts again from the first byte`,
    );
  }
  const state = usable ? { ...saved, url: file.url, done: coveredBy(saved.done, onDisk!.size) } : fresh;
  if (usable) {
    // The record is saved after its bytes are synced, but a file cut short afterwards (truncated by
    // hand, a restored backup, a filesystem that lost its tail) would make a resume skip bytes it
    // lacks: trust only what the file's size covers, and fetch the rest again.
    const recorded = new Intervals(saved.done).total;
    const kept = new Intervals(state.done).total;
    if (kept < recorded) {
      logger?.warn(
        { part: partPath, part_bytes: onDisk!.size, recorded_bytes: recorded, dropped_bytes: recorded - kept },
        `the partial file ${partPath} holds ${onDisk!.size} bytes, less than its record of ${recorded}; the ${recorded - kept} bytes it lacks are fetched again`,
      );
    }
  }
  // A validator (ETag) belongs to the server that sent it: bytes verified by sha256 resume from another one.
  if (usable && saved.url !== file.url) delete state.validator;
  const resumedBytes = new Intervals(state.done).total;
  return { file, partPath, statePath, state, resumedBytes, fromElsewhere: Boolean(usable && saved.url !== file.url && resumedBytes > 0) };
}

/** The recorded ranges cut at `size`, the length of the file that holds them. */
function coveredBy(done: ReadonlyArray<readonly [number, number]>, size: number): Array<[number, number]> {
  const kept = new Intervals();
  for (const [start, end] of done) kept.add(start, Math.min(end, size));
  return kept.toJSON();
}

/** One URL the file's bytes come from: the source's own, or one of its mirrors. */
interface Origin {
  url: string;
  headers: Record<string, string> | undefined;
  /** A redirect target that worked (a signed CDN URL), asked directly until it stops working. */
  resolvedUrl: string | undefined;
  /** Bytes it sent that reached the disk in this attempt. */
  served: number;
  /** Why it is no longer asked. */
  dropped: Error | undefined;
}

function hostOf(origin: Origin): string {
  return new URL(origin.resolvedUrl ?? origin.url).host;
}

/** Thrown when what is on disk cannot be continued (content changed, ranges ignored): start over. */
class RestartFromZero extends Error {
  constructor(readonly rangesSupported: boolean | undefined, reason: string) {
    super(reason);
  }
}

function parseContentRange(value: string | undefined): { start: number; total: number | undefined } | undefined {
  const m = value ? /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(value.trim()) : null;
  if (!m) return undefined;
  return { start: Number(m[1]), total: m[3] === "*" ? undefined : Number(m[3]) };
}

/** A strong ETag, else Last-Modified: what If-Range may carry. */
function validatorOf(res: OpenResponse): string | undefined {
  const etag = headerValue(res.headers, "etag");
  if (etag && !etag.startsWith("W/")) return etag;
  return headerValue(res.headers, "last-modified");
}

/** Whether the data reached the disk (a failure is not thrown: the final sync reports it). */
function fdatasync(fd: number): Promise<boolean> {
  return new Promise((resolve) => fs.fdatasync(fd, (err) => resolve(!err)));
}

/**
 * Downloads one file into its .part file: resumes what an earlier run left (Range + If-Range),
 * uses several ranged connections for large files (to each of the file's URLs when it has
 * mirrors), retries with backoff from where each connection stopped, hashes while downloading,
 * and verifies size and sha256 at the end.
 */
export async function downloadFile(prepared: PreparedFile, options: FileTransferOptions): Promise<DownloadedFile> {
  await fsp.mkdir(path.dirname(prepared.partPath), { recursive: true });
  const handle = await fsp.open(prepared.partPath, prepared.state.done.length > 0 ? "r+" : "w");
  const download = new FileDownload(prepared, options, handle);
  try {
    const done = await download.run();
    options.live?.verified(done.size);
    return done;
  } catch (err) {
    options.live?.fail(err as Error);
    throw err;
  } finally {
    await download.dispose();
    await handle.close();
  }
}

class FileDownload {
  private readonly file: RemoteFile;
  private readonly state: PartialState;
  private readonly done: Intervals;
  private size: number | undefined;
  private follower: HashFollower;
  private readonly origins: Origin[];
  private rangesSupported: boolean | undefined;
  private stateDirty = true;
  private stateWrite: Promise<void> = Promise.resolve();
  private readonly stateTimer: NodeJS.Timeout;
  private unsynced = 0;
  private syncing: Promise<void> | undefined;
  private discarded = false;

  constructor(
    private readonly prepared: PreparedFile,
    private readonly options: FileTransferOptions,
    private readonly handle: fsp.FileHandle,
  ) {
    this.file = prepared.file;
    this.origins = [{ url: this.file.url, headers: this.file.headers }, ...(this.file.mirrors ?? [])].map((o) => ({
      url: o.url, headers: o.headers, resolvedUrl: undefined, served: 0, dropped: undefined,
    }));
    this.state = prepared.state;
    this.done = new Intervals(this.state.done);
    this.size = this.file.size ?? this.state.size;
    this.follower = this.newFollower(this.size);
    // What an earlier run recorded was on the disk before its record was (see saveState).
    this.options.live?.durableTo(this.done.prefixEnd);
    this.follower.advance(this.done.prefixEnd);
    this.stateTimer = setInterval(() => void this.saveState(), STATE_SAVE_MS);
    this.stateTimer.unref();
  }

  async run(): Promise<DownloadedFile> {
    for (let carriedOver = this.prepared.fromElsewhere; ; carriedOver = false) {
      await this.transferAll();
      await this.syncing;
      await this.handle.sync();
      this.options.live?.durableTo(this.done.prefixEnd);
      const size = this.size ?? this.done.prefixEnd;
      const onDisk = (await this.handle.stat()).size;
      if (this.done.prefixEnd < size || onDisk !== size) {
        await this.discard();
        throw new LlmlbError("SIZE_MISMATCH", `${this.file.name}: expected ${size} bytes, got ${Math.min(onDisk, this.done.prefixEnd)}`, {
          file: this.file.name, expected_bytes: String(size), actual_bytes: String(onDisk),
        });
      }
      const sha256 = await this.follower.finish(size);
      if (this.file.sha256 && sha256 !== this.file.sha256) {
        const senders = this.origins.filter((o) => o.served > 0);
        if (carriedOver || senders.length > 1) {
          // Bytes kept from another source (a peer whose own download then failed its check), or
          // parts from several sources, one of which is wrong: all of it once more from one source
          // alone before giving up, so a failure then names the source at fault.
          const reason = `the file, ${carriedOver ? "resumed from bytes another source sent" : `put together from ${senders.map(hostOf).join(", ")}`}, has sha256 ${sha256}, expected ${this.file.sha256}`;
          this.options.logger.warn({ reason }, "restarting the download from the first byte");
          const keep = this.liveOrigins()[0] ?? this.origins[0]!;
          for (const o of this.origins) if (o !== keep) o.dropped ??= new Error(reason);
          keep.dropped = undefined;
          await this.restart();
          this.options.onRestart?.(reason);
          continue;
        }
        await this.discard();
        const host = hostOf(senders[0] ?? this.liveOrigins()[0] ?? this.origins[0]!);
        throw new LlmlbError(
          "CHECKSUM_MISMATCH",
          `${this.file.name}: the bytes from ${host} have sha256 ${sha256}, expected ${this.file.sha256}; nothing was installed and the partial file was removed`,
          { file: this.file.name, expected_sha256: this.file.sha256, actual_sha256: sha256, host },
        );
      }
      return { name: this.file.name, path: this.prepared.partPath, size, sha256 };
    }
  }

  /** Transfers every missing byte, starting over when what is on disk cannot be continued. */
  private async transferAll(): Promise<void> {
    for (let round = 0; ; round++) {
      try {
        await this.transfer();
        return;
      } catch (err) {
        if (!(err instanceof RestartFromZero) || round >= this.options.retries) throw err;
        this.options.logger.warn({ reason: err.message }, "restarting the download from the first byte");
        this.rangesSupported = err.rangesSupported;
        await this.restart();
        this.options.onRestart?.(err.message);
      }
    }
  }

  async dispose(): Promise<void> {
    clearInterval(this.stateTimer);
    this.follower.close();
    await this.syncing;
    if (!this.discarded) await this.saveState();
  }

  private async transfer(): Promise<void> {
    const size = this.size;
    if (size !== undefined && this.done.prefixEnd >= size) return;
    const multi = this.options.connections > 1 && size !== undefined && size >= MULTI_CONNECTION_MIN_BYTES && this.rangesSupported !== false;
    if (size === undefined) {
      await this.fetchRange({ pos: this.done.prefixEnd }, undefined, this.options.signal, this.liveOrigins()[0]!);
      return;
    }
    if (!multi) {
      await this.fetchPieces([[this.done.prefixEnd, size]], 1);
      return;
    }
    const connections = this.options.connections * this.liveOrigins().length;
    const pieceSize = Math.min(MAX_PIECE, Math.max(MIN_PIECE, Math.ceil(size / (connections * 8))));
    const pieces: Array<[number, number]> = [];
    for (const [start, end] of this.done.missing(size)) {
      for (let p = start; p < end; p += pieceSize) pieces.push([p, Math.min(end, p + pieceSize)]);
    }
    // The first piece alone tells whether ranges work before more connections open.
    if (this.rangesSupported === undefined) await this.fetchPieces([pieces.shift()!], 1);
    await this.fetchPieces(pieces, this.options.connections);
  }

  private liveOrigins(): Origin[] {
    return this.origins.filter((o) => !o.dropped);
  }

  /**
   * Fetches the pieces over `connections` connections to each live origin. An origin that fails
   * or answers inconsistently while others remain is dropped; the rest of its piece goes back to
   * the queue for the others.
   */
  private async fetchPieces(pieces: Array<[number, number]>, connections: number): Promise<void> {
    while (pieces.length > 0) {
      const pool = new AbortController();
      const signal = AbortSignal.any([this.options.signal, pool.signal]);
      const origins = this.liveOrigins();
      const perOrigin = Math.min(connections, pieces.length);
      // Each connection holds one abort listener on this signal at a time (its request or its retry
      // wait); 3 peers x 4 connections pass Node's default of 10 and would print a leak warning.
      setMaxListeners(Math.max(origins.length * perOrigin, defaultMaxListeners), signal);
      const worker = async (origin: Origin) => {
        for (let piece = pieces.shift(); piece; piece = pieces.shift()) {
          if (origin.dropped) {
            pieces.unshift(piece);
            return;
          }
          const cursor = { pos: piece[0] };
          try {
            await this.fetchRange(cursor, piece[1], signal, origin, true);
          } catch (err) {
            if (signal.aborted || !this.drop(origin, err)) throw err;
            if (cursor.pos < piece[1]) pieces.unshift([cursor.pos, piece[1]]);
            return;
          }
        }
      };
      const workers = origins.flatMap((origin) =>
        Array.from({ length: perOrigin }, () =>
          worker(origin).catch((err: unknown) => {
            pool.abort(err);
            throw err;
          }),
        ),
      );
      const results = await Promise.allSettled(workers);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) throw this.options.signal.aborted ? this.options.signal.reason : (pool.signal.reason ?? failed.reason);
    }
  }

  /** Stops asking `origin` after `err` when another origin remains and the failure is that origin's (not the disk's). */
  private drop(origin: Origin, err: unknown): boolean {
    if (err instanceof DiskWriteError || isAbortError(err) || isLlmlbError(err, "INSUFFICIENT_DISK") || isLlmlbError(err, "FILE_TOO_LARGE")) return false;
    if (!this.origins.some((o) => o !== origin && !o.dropped)) return false;
    origin.dropped = err as Error;
    this.options.logger.warn(
      { source: hostOf(origin), err: (err as Error).message, remaining: this.liveOrigins().map(hostOf) },
      "a source of the file failed; its ranges go to the other sources",
    );
    return true;
  }

  /**
   * Fetches [cursor.pos, end) (end undefined: to the end of the file) from `origin`, retrying from
   * where it stopped; when `shared` with other origins still live, the first failure is thrown at
   * once (they take over).
   */
  private async fetchRange(cursor: { pos: number }, end: number | undefined, signal: AbortSignal, origin: Origin, shared = false): Promise<void> {
    let failures = 0;
    for (;;) {
      const before = cursor.pos;
      try {
        await this.fetchOnce(cursor, end, signal, origin);
        const target = end ?? this.size;
        if (target === undefined || cursor.pos >= target) return;
        throw new ConnectionEndedError(cursor.pos, target);
      } catch (err) {
        if (signal.aborted) throw signal.reason ?? err;
        if (err instanceof RestartFromZero || err instanceof LlmlbError || err instanceof DiskWriteError || isAbortError(err)) throw err;
        // Every byte of the range arrived and the connection then failed (a Content-Length that
        // claimed more): there is nothing left to ask for; the file's size and digest decide.
        const target = end ?? this.size;
        if (target !== undefined && cursor.pos >= target) return;
        if (shared && this.liveOrigins().length > 1) throw err;
        const status = err instanceof RetryableHttpError;
        const resumable = err instanceof ConnectionEndedError || err instanceof ExpiredRedirectError || err instanceof TooSlowError;
        if (!status && !resumable && !isRetryableNetworkError(err)) throw err;
        if (cursor.pos > before) failures = 0;
        failures++;
        if (this.rangesSupported === false && cursor.pos > 0) throw new RestartFromZero(false, "the server cannot resume (no ranges)");
        const asked = status ? err.retryAfterMs : undefined;
        if (failures > this.options.retries || (asked !== undefined && asked > this.options.maxRetryAfterMs)) throw this.exhausted(err, failures, origin);
        const delay = asked ?? backoffMs(failures, { baseMs: this.options.retryBaseMs });
        this.options.logger.warn(
          { at: cursor.pos, attempt: failures, delayMs: delay, err: (err as Error).message },
          "download interrupted; retrying from where it stopped",
        );
        await sleep(delay, undefined, { signal });
      }
    }
  }

  private exhausted(err: unknown, failures: number, origin: Origin): LlmlbError {
    const host = hostOf(origin);
    if (err instanceof RetryableHttpError && err.status === 429) {
      const seconds = Math.ceil((err.retryAfterMs ?? 0) / 1000);
      return new LlmlbError("RATE_LIMITED", `${err.host} keeps answering 429 (rate limited); try again in ${seconds} s`, {
        host: err.host, retry_after_seconds: String(seconds),
      });
    }
    const code = (err as { code?: unknown }).code;
    const what = code === "UND_ERR_BODY_TIMEOUT" || code === "UND_ERR_HEADERS_TIMEOUT"
      ? `no data for ${this.options.stallMs / 1000} s`
      : err instanceof TooSlowError
        ? `under ${MIN_BYTES_PER_SECOND / 1024} KiB/s for ${err.seconds} s`
        : (err as Error).message;
    return new LlmlbError("SOURCE_UNAVAILABLE", `downloading ${this.file.name} from ${host} failed ${failures} times in a row (${what})`, {
      host, file: this.file.name,
    }, { cause: err });
  }

  /** One request for [cursor.pos, end); advances cursor.pos by what reached the disk. */
  private async fetchOnce(cursor: { pos: number }, end: number | undefined, signal: AbortSignal, origin: Origin): Promise<void> {
    const url = origin.resolvedUrl ?? origin.url;
    const headers: Record<string, string> = {};
    if (this.rangesSupported !== false) {
      headers.range = `bytes=${cursor.pos}-${end !== undefined ? end - 1 : ""}`;
      if (this.state.validator) headers["if-range"] = this.state.validator;
    }
    const sameOrigin = new URL(url).origin === new URL(origin.url).origin;
    const res = await this.options.http.open(url, {
      headers,
      ...(sameOrigin && origin.headers ? { originHeaders: origin.headers } : {}),
      signal,
      timeoutMs: this.options.stallMs,
    });
    try {
      await this.accept(res, cursor, end, url !== origin.url, origin);
    } catch (err) {
      discardBody(res.body);
      throw err;
    }
    if (res.status === 416) {
      discardBody(res.body);
      return;
    }
    const writer = new PositionalWriter(this.handle.fd, cursor.pos, (s, e) => {
      origin.served += e - s;
      this.written(s, e);
    });
    // The stall timeout only sees silence; a byte every few seconds would hold the download for days.
    let windowStart = performance.now();
    let windowBytes = 0;
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        windowBytes += chunk.length;
        const elapsed = performance.now() - windowStart;
        if (elapsed >= this.options.stallMs) {
          if (windowBytes < (MIN_BYTES_PER_SECOND * elapsed) / 1000) throw new TooSlowError(windowBytes, Math.round(elapsed / 1000));
          windowStart = performance.now();
          windowBytes = 0;
        }
        if (this.size === undefined && writer.position + chunk.length > this.options.maxUnknownSizeBytes) throw await this.tooLarge();
        const room = end !== undefined ? end - writer.position : Infinity;
        if (chunk.length > room) {
          if (room > 0) await writer.push(chunk.subarray(0, room));
          break;
        }
        await writer.push(chunk);
      }
    } finally {
      discardBody(res.body);
      try {
        await writer.flush();
      } finally {
        cursor.pos = writer.position;
      }
    }
  }

  /** Checks the response headers against what was asked and what is on disk. */
  private async accept(res: OpenResponse, cursor: { pos: number }, end: number | undefined, viaCachedRedirect: boolean, origin: Origin): Promise<void> {
    if (res.status === 416) {
      if (this.size !== undefined && cursor.pos >= this.size) return;
      throw new RestartFromZero(undefined, "the server says the partial file is longer than the file");
    }
    if (res.status !== 200 && res.status !== 206) {
      if (viaCachedRedirect && [401, 403, 404, 410].includes(res.status)) {
        // A signed CDN URL expired: ask the source's URL for a new one.
        origin.resolvedUrl = undefined;
        throw new ExpiredRedirectError(res.status);
      }
      throw httpStatusError(res.status, res.headers, res.url);
    }
    if (res.redirected) origin.resolvedUrl = res.url;
    const validator = validatorOf(res);
    if (this.state.validator && validator && validator !== this.state.validator) {
      throw new RestartFromZero(this.rangesSupported, "the file changed on the server since the partial download began");
    }
    let total: number | undefined;
    if (res.status === 206) {
      const range = parseContentRange(headerValue(res.headers, "content-range"));
      if (!range || range.start !== cursor.pos) throw new RestartFromZero(undefined, "the server answered a different range than asked");
      total = range.total;
      this.rangesSupported = true;
    } else {
      const length = headerValue(res.headers, "content-length");
      total = length !== undefined ? Number(length) : undefined;
      if (cursor.pos > 0 || (end !== undefined && total !== undefined && end < total)) {
        throw new RestartFromZero(false, "the server ignores byte ranges");
      }
      if (this.rangesSupported === undefined) this.rangesSupported = headerValue(res.headers, "accept-ranges") === "bytes" ? undefined : false;
    }
    if (validator && !this.state.validator) {
      this.state.validator = validator;
      this.stateDirty = true;
    }
    if (total !== undefined) await this.learnSize(total);
  }

  private async learnSize(total: number): Promise<void> {
    if (this.size === total) return;
    if (this.size !== undefined) {
      throw new LlmlbError("SIZE_MISMATCH", `${this.file.name}: the source announced ${this.size} bytes but the server sends ${total}`, {
        file: this.file.name, expected_bytes: String(this.size), actual_bytes: String(total),
      });
    }
    if (this.file.size === undefined && total > this.options.maxUnknownSizeBytes) throw await this.tooLarge(total);
    await this.options.onSizeLearned(total);
    this.size = total;
    this.state.size = total;
    this.stateDirty = true;
    if (this.options.live) this.options.live.size = total;
    if (this.done.prefixEnd === 0) {
      this.follower.close();
      this.follower = this.newFollower(total);
    }
  }

  /** The server sends (or announces) more than a file of unannounced size may have; nothing of it is kept. */
  private async tooLarge(announced?: number): Promise<LlmlbError> {
    await this.discard();
    const what = announced !== undefined ? `announces ${announced} bytes` : `sent more than ${this.options.maxUnknownSizeBytes} bytes`;
    return new LlmlbError(
      "FILE_TOO_LARGE",
      `${this.file.name}: the source did not say its size and the server ${what}, more than the ${this.options.maxUnknownSizeBytes} bytes allowed (the catalog's size or LLMLB_MAX_DOWNLOAD_SIZE)`,
      { file: this.file.name, limit_bytes: String(this.options.maxUnknownSizeBytes) },
    );
  }

  private written(start: number, end: number): void {
    this.done.add(start, end);
    this.stateDirty = true;
    this.follower.advance(this.done.prefixEnd);
    this.options.onBytes(end - start);
    this.unsynced += end - start;
    if (this.unsynced >= SYNC_EVERY_BYTES && !this.syncing) {
      this.unsynced = 0;
      this.syncing = this.syncData().finally(() => {
        this.syncing = undefined;
      });
    }
  }

  private async restart(): Promise<void> {
    this.options.onBytes(-this.done.total);
    for (const o of this.origins) o.served = 0;
    this.done.clear();
    delete this.state.validator;
    this.stateDirty = true;
    this.options.live?.restarted();
    await this.handle.truncate(0);
    this.follower.close();
    this.follower = this.newFollower(this.size);
  }

  /** A hash of the file from byte 0 that tells the live file how far it got (in this epoch only). */
  private newFollower(size: number | undefined): HashFollower {
    const live = this.options.live;
    const epoch = live?.epoch;
    return createHashFollower(this.prepared.partPath, size, (upTo) => {
      if (live && live.epoch === epoch) live.hashedTo(upTo);
    });
  }

  /** fdatasync, then the bytes of the contiguous prefix as it was before the call are durable. */
  private async syncData(): Promise<void> {
    const live = this.options.live;
    const upTo = this.done.prefixEnd;
    const epoch = live?.epoch;
    if ((await fdatasync(this.handle.fd)) && live && live.epoch === epoch) live.durableTo(upTo);
  }

  private saveState(): Promise<void> {
    this.stateWrite = this.stateWrite.then(async () => {
      if (!this.stateDirty || this.discarded) return;
      this.stateDirty = false;
      this.state.done = this.done.toJSON();
      // The ranges recorded must be on the disk before the record is: after a power loss the state
      // never claims bytes the file does not hold.
      await this.syncData()
        .then(() => writePartialState(this.prepared.statePath, this.state))
        .catch(() => {
          this.stateDirty = true;
        });
    });
    return this.stateWrite;
  }

  /** Removes the .part file and its state: they can never become a valid file. */
  private async discard(): Promise<void> {
    this.discarded = true;
    await this.stateWrite;
    await fsp.rm(this.prepared.statePath, { force: true });
    await fsp.rm(this.prepared.partPath, { force: true });
  }
}
