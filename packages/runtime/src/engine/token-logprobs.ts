import type { LlamaContextSequence, Token } from "node-llama-cpp";
import type { TokenLogprob, TopLogprob } from "./types.js";

export const MAX_TOP_LOGPROBS = 20;

interface Sampled {
  token: Token;
  probabilities?: Map<Token, number>;
}

/**
 * Log probabilities of generated tokens. node-llama-cpp's chat and completion drive a sequence
 * through `evaluate`; the sequence handed to them here evaluates with token probabilities instead
 * and records each sampled token. `take(tokens)` then pairs the tokens of the answer (as reported
 * by onToken) with what was recorded, skipping tokens that were not part of the answer (thoughts,
 * function calls, stop strings).
 */
export class TokenLogprobs {
  readonly sequence: LlamaContextSequence;
  private recorded: Sampled[] = [];
  /** The answer's last tokens: a token's text depends on what precedes it (leading spaces). */
  private previous: Token[] = [];

  constructor(
    sequence: LlamaContextSequence,
    private readonly top: number,
  ) {
    const record = (sampled: Sampled) => void this.recorded.push(sampled);
    this.sequence = new Proxy(sequence, {
      get(target, property) {
        if (property === "evaluate") return evaluateRecording(target, record);
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  take(tokens: readonly Token[]): TokenLogprob[] {
    const model = this.sequence.model;
    const out: TokenLogprob[] = [];
    for (const token of tokens) {
      const at = this.recorded.findIndex((sampled) => sampled.token === token);
      if (at < 0) continue;
      const [sampled] = this.recorded.splice(0, at + 1).slice(-1);
      const text = (t: Token) => model.detokenize([t], false, this.previous);
      out.push({ ...entry(text, token, sampled!.probabilities?.get(token) ?? 1), topLogprobs: topOf(text, sampled!.probabilities, this.top) });
      this.previous = [...this.previous.slice(-7), token];
    }
    return out;
  }
}

type EvaluateOptions = Parameters<LlamaContextSequence["evaluate"]>[1];

function evaluateRecording(sequence: LlamaContextSequence, record: (sampled: Sampled) => void) {
  return async function* evaluate(tokens: Token[], options?: EvaluateOptions): AsyncGenerator<Token, void, Token | undefined> {
    const iterator = sequence.evaluateWithMetadata(tokens, { probabilities: true }, options);
    let input: Token | undefined;
    try {
      for (;;) {
        // node-llama-cpp's own evaluate forwards the caller's replacement token the same way.
        const { value, done } = await (iterator.next as (value?: Token) => ReturnType<typeof iterator.next>)(input);
        if (done) return;
        record({ token: value.token, probabilities: value.probabilities });
        input = yield value.token;
      }
    } finally {
      await iterator.return(undefined);
    }
  };
}

function topOf(text: (token: Token) => string, probabilities: Map<Token, number> | undefined, top: number): TopLogprob[] {
  if (!probabilities || top === 0) return [];
  const best: Array<[Token, number]> = [];
  for (const pair of probabilities) {
    if (best.length === top && pair[1] <= best[top - 1]![1]) continue;
    best.push(pair);
    best.sort((a, b) => b[1] - a[1]);
    if (best.length > top) best.pop();
  }
  return best.map(([token, probability]) => entry(text, token, probability));
}

function entry(text: (token: Token) => string, token: Token, probability: number): TopLogprob {
  const piece = text(token);
  return { token: piece, logprob: Math.log(Math.max(probability, Number.MIN_VALUE)), bytes: [...Buffer.from(piece, "utf8")] };
}
