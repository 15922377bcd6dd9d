/**
 * Per-key rate limit for change notifications: state changes pass at once, progress-only changes
 * at most once per interval per key, with the latest one delivered when the interval ends.
 */
export class ChangeThrottle {
  private readonly lastEmit = new Map<string, number>();
  private readonly pending = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly intervalMs: number,
    private readonly emit: (key: string) => void,
    private readonly now: () => number = () => Date.now(),
  ) {}

  push(key: string, progressOnly: boolean): void {
    if (!progressOnly) return this.fire(key);
    if (this.pending.has(key)) return;
    const wait = (this.lastEmit.get(key) ?? -Infinity) + this.intervalMs - this.now();
    if (wait <= 0) return this.fire(key);
    const timer = setTimeout(() => this.fire(key), wait);
    timer.unref();
    this.pending.set(key, timer);
  }

  close(): void {
    for (const timer of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }

  private fire(key: string): void {
    const timer = this.pending.get(key);
    if (timer) clearTimeout(timer);
    this.pending.delete(key);
    this.lastEmit.set(key, this.now());
    this.emit(key);
  }
}
