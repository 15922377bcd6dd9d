import { LlmlbError } from "../errors/index.js";
import type { ResolveEvent } from "./types.js";

interface Waiter {
  onEvent: (event: ResolveEvent) => void;
}

/**
 * One in-flight resolution shared by every caller of the same artifact. Each caller gets the
 * events from when it joined on, starting with a snapshot (source being tried, lock wait, last
 * progress). A caller that leaves only stops waiting; the work is aborted when nobody waits.
 */
export class SharedJob<T> {
  readonly done: Promise<T>;
  private readonly controller = new AbortController();
  private readonly waiters = new Set<Waiter>();
  private settled = false;
  private tried: ResolveEvent | undefined;
  private lockWait: ResolveEvent | undefined;
  private progress: ResolveEvent | undefined;

  constructor(work: (job: SharedJob<T>) => Promise<T>) {
    this.done = Promise.resolve().then(() => work(this));
    this.done.then(
      () => (this.settled = true),
      () => (this.settled = true),
    );
  }

  /** Aborted when the last caller leaves. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  emit(event: ResolveEvent): void {
    if (event.type === "source-tried") {
      this.tried = event;
      this.lockWait = this.progress = undefined;
    } else if (event.type === "lock-wait") this.lockWait = event;
    else if (event.type === "progress") this.progress = event;
    else this.lockWait = this.progress = undefined;
    for (const w of this.waiters) {
      try {
        w.onEvent(event);
      } catch {
        // One caller's faulty listener must not disturb the others.
      }
    }
  }

  /** Stops the work whoever waits (node shutdown). */
  abort(reason: Error): void {
    this.controller.abort(reason);
  }

  join(signal: AbortSignal | undefined, onEvent: (event: ResolveEvent) => void = () => {}): Promise<T> {
    if (signal?.aborted) {
      this.abandonIfAlone();
      return Promise.reject(cancelled(signal));
    }
    const waiter: Waiter = { onEvent };
    for (const e of [this.tried, this.lockWait, this.progress]) if (e) onEvent(e);
    this.waiters.add(waiter);
    return new Promise<T>((resolve, reject) => {
      const leave = () => {
        this.waiters.delete(waiter);
        signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        leave();
        this.abandonIfAlone();
        reject(cancelled(signal!));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.done.then(
        (value) => {
          leave();
          resolve(value);
        },
        (err: unknown) => {
          leave();
          reject(err);
        },
      );
    });
  }

  private abandonIfAlone(): void {
    if (this.waiters.size === 0 && !this.settled) {
      this.controller.abort(new LlmlbError("CANCELLED", "every caller waiting for this download went away"));
    }
  }
}

function cancelled(signal: AbortSignal): LlmlbError {
  return new LlmlbError("CANCELLED", "the caller cancelled the request", {}, { cause: signal.reason });
}
