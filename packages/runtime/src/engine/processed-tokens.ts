import type { LlamaContextSequence, TokenMeterState } from "node-llama-cpp";
import type { TokenUsage } from "./types.js";

type Processed = Pick<TokenUsage, "promptTokens" | "completionTokens">;

/**
 * The tokens one generation had the model process, however it ends: its usage when it answered;
 * when it was cancelled or failed, its prompt and what its sequence's token meter counted as
 * generated (nothing when the model did no work at all).
 */
export class ProcessedTokens {
  private taken?: { sequence: LlamaContextSequence; promptTokens: number; before: TokenMeterState };
  private counted?: Processed;

  /** The generation took `sequence` for a prompt of `promptTokens` tokens. */
  took(sequence: LlamaContextSequence, promptTokens: number): void {
    this.taken = { sequence, promptTokens, before: sequence.tokenMeter.getState() };
  }

  answered(usage: Processed): void {
    this.counted = { promptTokens: usage.promptTokens, completionTokens: usage.completionTokens };
  }

  /** The generation ended without an answer; called before its sequence is given back (another request would move the meter). */
  stopped(): void {
    if (!this.taken) return;
    const spent = this.taken.sequence.tokenMeter.diff(this.taken.before);
    if (spent.usedInputTokens + spent.usedOutputTokens > 0) this.counted = { promptTokens: this.taken.promptTokens, completionTokens: spent.usedOutputTokens };
  }

  get value(): Processed | undefined {
    return this.counted;
  }
}
