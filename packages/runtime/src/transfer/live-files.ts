/**
 * The files the transfer engine is downloading right now, as a reader of a growing file (the blob
 * route, for a peer of the fleet that follows this node's download) sees them: how far each file
 * is verified — durable on disk (fdatasync'd) AND consumed, in order, by the download's own
 * incremental sha256 — and whether it ended well. The last byte is released only once the whole
 * file's sha256 matched, so a file that fails its final check is never handed out complete.
 */
export class LiveFile {
  /** Bytes [0, verifiedBytes) are durable and hashed (the whole file once its sha256 matched). */
  verifiedBytes = 0;
  /** Why the download of this file failed or was abandoned; set once, then the file never grows. */
  failure: Error | undefined;
  /** Bumped when the download starts the file over: bytes handed out before belong to another epoch. */
  epoch = 0;
  private durable = 0;
  private hashed = 0;
  private complete = false;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly name: string,
    readonly partPath: string,
    public size: number | undefined,
    readonly sha256: string | undefined,
    /** When the transfer this file belongs to last made progress (any of its files), epoch ms. */
    private readonly lastProgress: { at: number },
  ) {}

  get lastProgressAt(): number {
    return this.lastProgress.at;
  }

  /** Bytes [0, upTo) reached the disk durably (an fdatasync covering them completed). */
  durableTo(upTo: number): void {
    if (upTo <= this.durable) return;
    this.durable = upTo;
    this.update();
  }

  /** The download's sha256 has consumed bytes [0, upTo). */
  hashedTo(upTo: number): void {
    if (upTo <= this.hashed) return;
    this.hashed = upTo;
    this.update();
  }

  /** The whole file matched its sha256 and is on disk. */
  verified(size: number): void {
    this.size = size;
    this.complete = true;
    this.update();
  }

  fail(err: Error): void {
    if (this.complete || this.failure) return;
    this.failure = err;
    this.notify();
  }

  /** The download discards what it had and starts again from byte 0. */
  restarted(): void {
    this.epoch++;
    this.durable = 0;
    this.hashed = 0;
    this.verifiedBytes = 0;
    this.notify();
  }

  /** Resolves at the next change (more verified bytes, failure, restart), or after `ms`. */
  changed(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      this.waiters.add(done);
    });
  }

  private update(): void {
    // Until the sha256 matched, at least the last byte is held back.
    const limit = this.complete ? this.size! : this.size !== undefined ? this.size - 1 : Infinity;
    const next = Math.min(this.durable, this.hashed, limit);
    if (next <= this.verifiedBytes && !this.complete) return;
    this.verifiedBytes = this.complete ? this.size! : next;
    this.notify();
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

/** Every running transfer's files, by the partial directory they download into. */
export class LiveFiles {
  private readonly byDir = new Map<string, LiveFile[]>();

  /** The files of the transfer into `partialDir`, in order; undefined when none is running. */
  get(partialDir: string): readonly LiveFile[] | undefined {
    return this.byDir.get(partialDir);
  }

  add(partialDir: string, files: LiveFile[]): () => void {
    this.byDir.set(partialDir, files);
    return () => {
      if (this.byDir.get(partialDir) === files) this.byDir.delete(partialDir);
    };
  }
}
