/**
 * The bridge from callbacks to an async loop: callbacks push, one reader iterates. The reader
 * waits while the queue is empty; end() lets it finish what is queued, an aborted `signal` stops
 * it at once.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  private ended = false;

  constructor(private readonly signal?: AbortSignal) {
    signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  get size(): number {
    return this.items.length;
  }

  get last(): T | undefined {
    return this.items[this.items.length - 1];
  }

  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
    this.notify();
  }

  /** Replaces the newest queued item (e.g. a progress update superseded by a newer one). */
  replaceLast(item: T): void {
    if (this.items.length === 0) this.push(item);
    else this.items[this.items.length - 1] = item;
  }

  /** No more items: the reader gets what is queued, then stops. */
  end(): void {
    this.ended = true;
    this.signal?.removeEventListener("abort", this.onAbort);
    this.notify();
  }

  /** The next item, waiting for one; undefined once ended and drained, or aborted. */
  async take(): Promise<{ item: T } | undefined> {
    for (;;) {
      if (this.signal?.aborted) return undefined;
      if (this.items.length > 0) return { item: this.items.shift()! };
      if (this.ended) return undefined;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    try {
      for (let next = await this.take(); next; next = await this.take()) yield next.item;
    } finally {
      this.signal?.removeEventListener("abort", this.onAbort);
    }
  }

  private readonly onAbort = () => this.notify();

  private notify(): void {
    this.wake?.();
  }
}
