import type { LlamaModel } from "node-llama-cpp";
import { LlmlbError } from "../errors/index.js";

/** Characters tokenized per synchronous call: a few ms even for small-vocabulary tokenizers. */
const SLICE_CHARS = 4096;
/** Tokens a slice boundary may add over tokenizing the text whole (a split word). */
const BOUNDARY_SLACK = 2;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The refusal of a prompt that does not fit: `has` tokens ("more than N" when counting stopped
 * early), the most that fit in a context of `contextSize` with `kept` tokens kept free (for the answer, or the end of an embedded text).
 */
export function promptTooLong(field: string, has: string, contextSize: number, kept: 1 | 2): LlmlbError {
  return new LlmlbError(
    "INVALID_ARGUMENT",
    `${field}: the prompt has ${has} tokens and at most ${contextSize - kept} fit (the model's context is ${contextSize} tokens per request, ${kept === 1 ? "one" : "two"} kept free); shorten it, or give the model a larger context_length / LLMLB_CONTEXT_SIZE`,
    { field, ...(/^\d+$/.test(has) ? { prompt_tokens: has } : {}), context_length: String(contextSize) },
  );
}

/** The refusal of a chat prompt that fits, but not with the opening LlamaChat writes after it (`what` that opening starts). */
export function openingDoesNotFit(promptTokens: number, contextSize: number, what: string): LlmlbError {
  return new LlmlbError(
    "INVALID_ARGUMENT",
    `messages: the prompt has ${promptTokens} tokens, and with the opening of ${what} they do not fit the model's context of ${contextSize} tokens per request; shorten it, or give the model a larger context_length / LLMLB_CONTEXT_SIZE`,
    { field: "messages", prompt_tokens: String(promptTokens), context_length: String(contextSize) },
  );
}

/**
 * Refuses texts that cannot fit in a context of `contextSize` tokens with `kept` kept for the
 * answer, without ever holding the event loop for one big tokenizer call: the texts are tokenized
 * in slices (cut at a space where possible), yielding between slices, and counting stops as soon
 * as the limit is clearly passed. The exact tokenization of a text that fits then costs at most a
 * context's worth of tokens.
 */
export async function refuseBeyondContext(
  model: LlamaModel,
  texts: readonly string[],
  { contextSize, kept, field }: { contextSize: number; kept: 1 | 2; field: string },
  signal?: AbortSignal,
): Promise<void> {
  const limit = contextSize - kept + 1;
  if (surelyFits(texts, limit)) return;
  let tokens = 0;
  let slices = 0;
  for (const text of texts) {
    for (let start = 0; start < text.length; slices++) {
      let end = Math.min(text.length, start + SLICE_CHARS);
      if (end < text.length) {
        const space = text.lastIndexOf(" ", end);
        if (space > start) end = space;
      }
      tokens += model.tokenize(text.slice(start, end)).length;
      if (tokens > limit + slices * BOUNDARY_SLACK) throw promptTooLong(field, `more than ${limit}`, contextSize, kept);
      start = end;
      if (end < text.length || texts.length > 1) {
        await nextTurn();
        signal?.throwIfAborted();
      }
    }
  }
}

/**
 * Texts too short to reach the limit, decided without the tokenizer: a token covers at least one
 * byte of its text, and a tokenizer may add one token of its own (a leading space) per call.
 */
function surelyFits(texts: readonly string[], limit: number): boolean {
  let bound = 0;
  for (const text of texts) {
    bound += Buffer.byteLength(text, "utf8") + 1;
    if (bound > limit) return false;
  }
  return true;
}
