import { LlmlbError } from "../errors/index.js";

interface Waiter {
  grant: () => void;
  reject: (err: unknown) => void;
}

/**
 * Admission to one model: up to `slots` requests run at once; the next `queueSize` wait in FIFO
 * order; beyond that RESOURCE_EXHAUSTED / QUEUE_FULL with a retry hint. A waiter whose signal
 * aborts leaves the queue.
 */
export class Admission {
  private running = 0;
  private readonly waiting: Waiter[] = [];
  /** Smoothed seconds a request holds a slot, for the retry hint. */
  private meanServiceSeconds = 1;

  constructor(
    readonly slots: number,
    readonly queueSize: number,
    private readonly label: string,
  ) {}

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves with the release function once a slot is free. */
  async enter(signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted();
    if (this.running < this.slots && this.waiting.length === 0) {
      this.running++;
      return this.releaser();
    }
    if (this.waiting.length >= this.queueSize) throw this.queueFull();
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
        reject,
      };
      const onAbort = () => {
        const index = this.waiting.indexOf(waiter);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(waiter);
    });
    return this.releaser();
  }

  /** Fails every waiter (the model is going away). */
  rejectAll(err: unknown): void {
    for (const waiter of this.waiting.splice(0)) waiter.reject(err);
  }

  private releaser(): () => void {
    const started = performance.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const seconds = (performance.now() - started) / 1000;
      this.meanServiceSeconds = 0.8 * this.meanServiceSeconds + 0.2 * seconds;
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so `running` stays the same.
      if (next) next.grant();
      else this.running--;
    };
  }

  private queueFull(): LlmlbError {
    const retryAfter = Math.max(1, Math.ceil((this.meanServiceSeconds * (this.waiting.length + 1)) / this.slots));
    return new LlmlbError(
      "QUEUE_FULL",
      `${this.label} is serving ${this.running} requests and ${this.waiting.length} are waiting ` +
        `(LLMLB_PARALLELISM=${this.slots}, LLMLB_QUEUE_SIZE=${this.queueSize}); retry later`,
      { retry_after_seconds: String(retryAfter) },
    );
  }
}
