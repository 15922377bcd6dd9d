import type { LlamaContext, LlamaContextSequence } from "node-llama-cpp";

/**
 * One llama context (for one adapter set) and its sequences. Sequences are kept across requests,
 * so a request that shares a prefix with the previous one on the same sequence (a growing chat)
 * reuses its evaluated tokens. Admission guarantees a free sequence when `take` is called.
 */
export class SequencePool {
  private readonly free: LlamaContextSequence[] = [];
  lastUsedAt = Date.now();

  constructor(
    readonly context: LlamaContext,
    readonly memoryBytes: number,
  ) {
    for (let i = 0; i < context.totalSequences; i++) this.free.push(context.getSequence());
  }

  get busy(): boolean {
    return this.active > 0;
  }

  /** Sequences serving a request now. */
  get active(): number {
    return this.context.totalSequences - this.free.length;
  }

  take(): LlamaContextSequence {
    const sequence = this.free.pop();
    if (!sequence) throw new Error("no free context sequence (admission should have prevented this)");
    this.lastUsedAt = Date.now();
    return sequence;
  }

  give(sequence: LlamaContextSequence): void {
    this.lastUsedAt = Date.now();
    this.free.push(sequence);
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
  }
}
