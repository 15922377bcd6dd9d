import { ensureDiskSpace } from "./disk-space.js";

/** Bytes one transfer still expects to write; shrinks as they reach the disk. */
export class DiskReservation {
  private remaining = 0;
  private released = false;

  constructor(private readonly ledger: DiskReservations) {}

  get outstanding(): number {
    return this.released ? 0 : this.remaining;
  }

  /** @internal Called by the ledger once the bytes were found to fit. */
  add(bytes: number): void {
    this.remaining += bytes;
  }

  /** Bytes written (they now show in the disk's free space instead). Negative: a restart discarded some. */
  consume(bytes: number): void {
    this.remaining = Math.max(0, this.remaining - bytes);
  }

  /** The size became known: checks and reserves the extra bytes like the first reservation. */
  grow(bytes: number, dir: string, reserve: number, what: string): Promise<void> {
    return this.ledger.claim(this, dir, bytes, reserve, what);
  }

  release(): void {
    this.released = true;
    this.ledger.forget(this);
  }
}

/**
 * One disk reservation shared by every download of this process: a transfer may start only when
 * its bytes fit beside what the running transfers have yet to write, with LLMLB_DISK_RESERVE left
 * free. Checks are serialised so two transfers cannot both count the same free space.
 */
export class DiskReservations {
  private readonly active = new Set<DiskReservation>();
  private queue: Promise<unknown> = Promise.resolve();

  /** Bytes the running transfers have reserved and not yet written. */
  outstanding(except?: DiskReservation): number {
    let total = 0;
    for (const r of this.active) if (r !== except) total += r.outstanding;
    return total;
  }

  /** Fails with INSUFFICIENT_DISK unless `bytes` fit beside every other reservation. */
  async reserve(dir: string, bytes: number, reserve: number, what: string): Promise<DiskReservation> {
    const reservation = new DiskReservation(this);
    await this.claim(reservation, dir, bytes, reserve, what);
    return reservation;
  }

  /** @internal */
  claim(owner: DiskReservation, dir: string, bytes: number, reserve: number, what: string): Promise<void> {
    const run = this.queue.then(async () => {
      await ensureDiskSpace(dir, bytes, reserve, what, this.outstanding(owner));
      owner.add(Math.max(0, bytes));
      this.active.add(owner);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** @internal */
  forget(reservation: DiskReservation): void {
    this.active.delete(reservation);
  }
}
