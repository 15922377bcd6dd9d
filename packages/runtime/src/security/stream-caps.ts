import { tooManyStreams } from "../errors/index.js";

/**
 * Counts open update streams (WatchModels, health Watch, SSE) per client address and in total, on
 * every listener of a node together. acquire() throws TOO_MANY_STREAMS at a cap; the returned
 * release is idempotent.
 */
export class StreamCaps {
  private readonly perAddress = new Map<string, number>();
  private total = 0;

  constructor(
    readonly maxPerClient: number,
    readonly maxTotal: number,
  ) {}

  get open(): number {
    return this.total;
  }

  acquire(address: string): () => void {
    const held = this.perAddress.get(address) ?? 0;
    if (held >= this.maxPerClient) throw tooManyStreams(this.maxPerClient, true);
    if (this.total >= this.maxTotal) throw tooManyStreams(this.maxTotal, false);
    this.perAddress.set(address, held + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.perAddress.set(address, left);
      else this.perAddress.delete(address);
    };
  }
}
