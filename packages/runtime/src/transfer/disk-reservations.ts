import type { SharedReservations } from "../store/shared-reservations.js";
import { ensureDiskSpace } from "./disk-space.js";

/** How often this process rewrites its shared entry while downloading (bytes written shrink it; it is also the heartbeat). */
const SHARED_REFRESH_MS = 1_000;

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
 * One disk reservation shared by every download of this process and, with `shared`, of every
 * process using the same home: a transfer may start only when its bytes fit beside what the
 * running transfers (here and there) have yet to write, with LLMLB_DISK_RESERVE left free. Checks
 * are serialised (here by a queue, across processes by the shared file's mutex) so two transfers
 * cannot both count the same free space.
 */
export class DiskReservations {
  private readonly active = new Set<DiskReservation>();
  private queue: Promise<unknown> = Promise.resolve();
  private refresher?: NodeJS.Timeout;

  constructor(private readonly shared?: SharedReservations) {}

  /** Bytes the running transfers have reserved and not yet written. */
  outstanding(except?: DiskReservation): number {
    let total = 0;
    for (const r of this.active) if (r !== except) total += r.outstanding;
    return total;
  }

  /** Fails with INSUFFICIENT_DISK unless `bytes` fit beside every other reservation. */
  async reserve(dir: string, bytes: number, reserve: number, what: string): Promise<DiskReservation> {
    const reservation = new DiskReservation(this);
    try {
      await this.claim(reservation, dir, bytes, reserve, what);
    } catch (err) {
      reservation.release();
      throw err;
    }
    return reservation;
  }

  /** @internal */
  claim(owner: DiskReservation, dir: string, bytes: number, reserve: number, what: string): Promise<void> {
    const run = this.queue.then(async () => {
      const grant = () => {
        owner.add(Math.max(0, bytes));
        this.active.add(owner);
      };
      if (!this.shared) {
        await ensureDiskSpace(dir, bytes, reserve, what, this.outstanding(owner));
        return grant();
      }
      await this.shared.update(
        () => this.outstanding(),
        async (othersBytes) => {
          await ensureDiskSpace(dir, bytes, reserve, what, this.outstanding(owner) + othersBytes);
          grant();
        },
      );
      this.refreshShared();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** @internal */
  forget(reservation: DiskReservation): void {
    this.active.delete(reservation);
    if (this.shared && this.active.size === 0) this.publish();
  }

  /** Keeps this process's shared entry current while it downloads; the last release removes it. */
  private refreshShared(): void {
    if (this.refresher) return;
    this.refresher = setInterval(() => this.publish(), SHARED_REFRESH_MS);
    this.refresher.unref();
  }

  private publish(): void {
    if (this.active.size === 0) {
      clearInterval(this.refresher);
      this.refresher = undefined;
    }
    const shared = this.shared!;
    // Queued with the claims, so an entry is never written from a stale total; a failed write is
    // retried by the next beat (and an entry that stops beating is ignored by the others).
    this.queue = this.queue.then(() => shared.update(() => this.outstanding())).catch(() => undefined);
  }
}
