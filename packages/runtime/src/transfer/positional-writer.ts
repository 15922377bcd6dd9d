import fs from "node:fs";
import { localDiskError } from "../errors/index.js";

const BATCH_BYTES = 512 << 10;
const MAX_IN_FLIGHT = 4;
/** Bytes that wait longer than this for a full batch are written anyway (a stalled server). */
const IDLE_FLUSH_MS = 100;

/** A disk write failed: never worth a network retry. */
export class DiskWriteError extends Error {
  override readonly name = "DiskWriteError";
}

function writev(fd: number, buffers: Buffer[], position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.writev(fd, buffers, position, (err, written) => (err ? reject(err) : resolve(written))));
}

async function writevAll(fd: number, buffers: Buffer[], position: number, length: number): Promise<void> {
  let done = 0;
  let rest = buffers;
  while (done < length) {
    const written = await writev(fd, rest, position + done);
    if (written <= 0) throw new Error("write made no progress");
    done += written;
    if (done < length) {
      // Short write: drop what went out and retry with the remainder.
      let skip = written;
      const next: Buffer[] = [];
      for (const b of rest) {
        if (skip >= b.length) skip -= b.length;
        else {
          next.push(skip > 0 ? b.subarray(skip) : b);
          skip = 0;
        }
      }
      rest = next;
    }
  }
}

/**
 * Writes one response body at its file offset: chunks are gathered into ~512 KiB writev calls
 * (no copying), a few run at once, and the caller awaits push() for backpressure. onWritten
 * reports each range once it is in the file.
 */
export class PositionalWriter {
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private nextPosition: number;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | undefined;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly fd: number,
    start: number,
    private readonly onWritten: (start: number, end: number) => void,
  ) {
    this.nextPosition = start;
  }

  /** Bytes accepted so far end at this offset. */
  get position(): number {
    return this.nextPosition + this.batchBytes;
  }

  async push(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    this.batch.push(chunk);
    this.batchBytes += chunk.length;
    if (this.batchBytes < BATCH_BYTES) {
      this.idleTimer ??= setTimeout(() => {
        this.idleTimer = undefined;
        if (this.batchBytes > 0 && !this.failure) this.startWrite();
      }, IDLE_FLUSH_MS);
      return;
    }
    this.startWrite();
    while (this.inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
  }

  /** Writes what is gathered and waits for every write. */
  async flush(): Promise<void> {
    if (this.batchBytes > 0) this.startWrite();
    while (this.inFlight.size > 0) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
  }

  private startWrite(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const buffers = this.batch;
    const position = this.nextPosition;
    const length = this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
    this.nextPosition += length;
    const write = writevAll(this.fd, buffers, position, length).then(
      () => this.onWritten(position, position + length),
      (err: NodeJS.ErrnoException) => {
        this.failure ??= localDiskError(err) ?? new DiskWriteError(`cannot write the download: ${err.message}`, { cause: err });
      },
    );
    const tracked = write.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }
}
