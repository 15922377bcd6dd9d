import type { LlamaModel } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { partialCharacterTokens } from "../src/engine/partial-character-tokens.js";

/** The part of a loaded model the vocabulary is read from: its GGUF metadata. */
const modelWithVocabulary = (tokenizer: string, tokens: string[]) =>
  ({ fileInfo: { metadata: { tokenizer: { ggml: { model: tokenizer, tokens } } } } }) as unknown as LlamaModel;

describe("partialCharacterTokens", () => {
  it("finds byte tokens, split characters and characters outside the BMP in a SentencePiece vocabulary", () => {
    const tokens = ["<unk>", "<s>", "▁Paris", "<0x41>", "<0xC3>", "<0xF0>", "é", "😀", "▁東京", "▁🚀x"];
    expect(partialCharacterTokens(modelWithVocabulary("llama", tokens))).toEqual([4, 5, 7, 9]);
  });

  it("reads GPT-2's byte-level alphabet: a piece is the bytes its characters stand for", () => {
    // "Ġ" is a space; "Ã©" is é (C3 A9); "Ã" alone is a lead byte; "ðŁĺĢ" is 😀 (F0 9F 98 80); "æĿ±" is 東 (E6 9D B1).
    const tokens = ["Ġhello", "Ã©", "Ã", "ðŁĺĢ", "æĿ±", "ĠæĿ", "!"];
    expect(partialCharacterTokens(modelWithVocabulary("gpt2", tokens))).toEqual([2, 3, 5]);
  });

  it("finds nothing in a model without a vocabulary in its metadata", () => {
    expect(partialCharacterTokens({ fileInfo: { metadata: {} } } as unknown as LlamaModel)).toEqual([]);
  });
});
