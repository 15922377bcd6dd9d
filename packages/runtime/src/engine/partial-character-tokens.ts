import type { LlamaModel, Token } from "node-llama-cpp";
import { valueAt } from "./gguf-check.js";

/**
 * The tokens of a model that are not whole characters of Unicode's Basic Multilingual Plane: byte
 * tokens and pieces that hold part of a character's UTF-8 bytes, and pieces with a character outside
 * the BMP (an emoji, a rare CJK ideograph). The grammar counts such text differently from
 * JavaScript's `string.length`: a character outside the BMP is one character to the grammar (and to
 * JSON Schema's `maxLength`) but two UTF-16 units, and bytes that do not form a valid character are
 * one character to the grammar but one U+FFFD per byte once decoded. node-llama-cpp checks a finished
 * function call's strings by `string.length`, so without these tokens both counts agree. Read from
 * the GGUF's vocabulary once per model.
 */
export function partialCharacterTokens(model: LlamaModel): readonly Token[] {
  let found = cache.get(model);
  if (!found) {
    found = findPartialCharacterTokens(model);
    cache.set(model, found);
  }
  return found;
}

const cache = new WeakMap<LlamaModel, readonly Token[]>();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function findPartialCharacterTokens(model: LlamaModel): readonly Token[] {
  const pieces = valueAt(model.fileInfo.metadata, "tokenizer.ggml.tokens");
  if (!Array.isArray(pieces)) return [];
  const byteLevel = valueAt(model.fileInfo.metadata, "tokenizer.ggml.model") === "gpt2";
  const found: Token[] = [];
  pieces.forEach((piece, id) => {
    if (typeof piece === "string" && !isWholeBmpText(pieceBytes(piece, byteLevel))) found.push(id as Token);
  });
  return found;
}

function isWholeBmpText(bytes: Uint8Array): boolean {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return false;
  }
  // A UTF-16 surrogate in the decoded text is half of a character outside the BMP.
  return !/[\uD800-\uDFFF]/.test(text);
}

/** A vocabulary entry as the bytes it stands for: a byte-fallback token `<0xNN>`, GPT-2's byte-level alphabet, or plain text. */
function pieceBytes(piece: string, byteLevel: boolean): Uint8Array {
  const byteToken = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
  if (byteToken) return Uint8Array.of(Number.parseInt(byteToken[1]!, 16));
  if (!byteLevel) return Buffer.from(piece, "utf8");
  return Uint8Array.from([...piece].flatMap((char) => {
    const byte = BYTE_LEVEL_DECODER.get(char);
    return byte === undefined ? [...Buffer.from(char, "utf8")] : [byte];
  }));
}

/** GPT-2's byte-level BPE alphabet (bytes_to_unicode), from character back to byte. */
const BYTE_LEVEL_DECODER: ReadonlyMap<string, number> = (() => {
  const range = (from: string, to: string) => Array.from({ length: to.charCodeAt(0) - from.charCodeAt(0) + 1 }, (_, i) => from.charCodeAt(0) + i);
  const printable = new Set([...range("!", "~"), ...range("¡", "¬"), ...range("®", "ÿ")]);
  const decoder = new Map<string, number>();
  let shifted = 0;
  for (let byte = 0; byte < 256; byte++) {
    decoder.set(String.fromCharCode(printable.has(byte) ? byte : 256 + shifted++), byte);
  }
  return decoder;
})();
