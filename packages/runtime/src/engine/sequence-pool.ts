import type { LlamaContext, LlamaContextSequence, Token } from "node-llama-cpp";

/** A sequence taken for a prompt, and how many of the prompt's first tokens it already holds. */
export interface TakenSequence {
  sequence: LlamaContextSequence;
  cachedTokens: number;
}

/**
 * One llama context (for one adapter set) and its sequences. Sequences keep their evaluated tokens
 * across requests, and a request takes the free sequence that shares the longest prefix with its
 * prompt (a growing chat finds its previous turn), so only the rest is evaluated. Admission
 * guarantees a free sequence when `take` is called.
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

  take(prompt: readonly Token[]): TakenSequence {
    let best = this.free.length - 1;
    let bestShared = -1;
    // From the most recently given back, so ties go to the warmest sequence.
    for (let i = this.free.length - 1; i >= 0; i--) {
      const shared = sharedPrefix(this.free[i]!.contextTokens, prompt);
      if (shared > bestShared) {
        best = i;
        bestShared = shared;
      }
    }
    const [sequence] = this.free.splice(best, 1);
    if (!sequence) throw new Error("no free context sequence (admission should have prevented this)");
    this.lastUsedAt = Date.now();
    // The last prompt token is evaluated again for its logits even when the sequence holds it.
    return { sequence, cachedTokens: Math.max(0, Math.min(bestShared, prompt.length - 1)) };
  }

  give(sequence: LlamaContextSequence): void {
    this.lastUsedAt = Date.now();
    this.free.push(sequence);
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
  }
}

function sharedPrefix(held: readonly Token[], prompt: readonly Token[]): number {
  const n = Math.min(held.length, prompt.length);
  let i = 0;
  while (i < n && held[i] === prompt[i]) i++;
  return i;
}
