import type { DeltaParts, TokenLogprob } from "./types.js";

/**
 * What a plain completion sends as it generates: its text, cut at the first stop string, and each
 * token's logprob entry with the text it belongs to.
 *
 * Stop strings are found here, in the text as it is sent, and not by LlamaCompletion: it matches
 * its stop triggers against each token detokenized alone, which drops a SentencePiece token's
 * leading space, so a stop string with a space in it never matched. Only text that could still be
 * the start of a stop string is held back. Logprob entries go out once their token's text has
 * (LlamaCompletion reports a chunk's tokens before its text); past a stop, the rest are dropped.
 */
export class CompletionOutput {
  private held = "";
  private sentLength = 0;
  private entries: TokenLogprob[] = [];
  /** Where the first entry still held starts in the text. */
  private entriesAt = 0;
  private stoppedAt?: number;

  constructor(
    private readonly emit: (parts: Partial<DeltaParts>) => void,
    private readonly stops: readonly string[] = [],
  ) {}

  /** True once a stop string appeared: generation should end. */
  get stopped(): boolean {
    return this.stoppedAt !== undefined;
  }

  text(text: string): void {
    if (this.stopped) return;
    this.held += text;
    const cut = this.firstStop();
    if (cut !== undefined) {
      this.stoppedAt = this.sentLength + cut;
      this.send(this.held.slice(0, cut));
      this.held = "";
      return;
    }
    const keep = this.stopPrefixLength();
    this.send(this.held.slice(0, this.held.length - keep));
    this.held = this.held.slice(this.held.length - keep);
  }

  logprobs(entries: readonly TokenLogprob[]): void {
    if (this.stopped) return;
    this.entries.push(...entries);
    this.send("");
  }

  /** The generation ended: what was held goes out. */
  end(): void {
    if (this.stopped) return;
    const rest = this.held;
    this.held = "";
    this.sentLength += rest.length;
    const entries = this.entries;
    this.entries = [];
    if (rest || entries.length > 0) this.emit({ text: rest, ...(entries.length > 0 ? { logprobs: entries } : {}) });
  }

  private send(text: string): void {
    this.sentLength += text.length;
    const ready: TokenLogprob[] = [];
    // Past a stop, the entries of tokens that start before it go with the text; the others never go.
    const limit = this.stoppedAt ?? this.sentLength;
    while (this.entries.length > 0) {
      const entry = this.entries[0]!;
      const fits = this.stoppedAt !== undefined ? this.entriesAt < limit : this.entriesAt + entry.token.length <= limit;
      if (!fits) break;
      ready.push(entry);
      this.entriesAt += entry.token.length;
      this.entries.shift();
    }
    if (this.stopped) this.entries = [];
    if (text || ready.length > 0) this.emit({ text, ...(ready.length > 0 ? { logprobs: ready } : {}) });
  }

  private firstStop(): number | undefined {
    let cut: number | undefined;
    for (const stop of this.stops) {
      const at = this.held.indexOf(stop);
      if (at !== -1 && (cut === undefined || at < cut)) cut = at;
    }
    return cut;
  }

  /** The longest end of the held text that is the start of a stop string. */
  private stopPrefixLength(): number {
    if (this.stops.length === 0) return 0;
    for (let length = Math.min(this.held.length, ...this.stops.map((s) => s.length - 1)); length > 0; length--) {
      const end = this.held.slice(-length);
      if (this.stops.some((stop) => stop.startsWith(end))) return length;
    }
    return 0;
  }
}
