import type { FileHandle } from "node:fs/promises";
import { open } from "node:fs/promises";
import { blockElements, tensorByteSize } from "./ggml-type-sizes.js";

/**
 * A bounded reader of a GGUF file's structure (header, metadata, tensor infos). Unlike a plain
 * parser it never trusts a count: every string length, array length, key count and tensor count is
 * checked against the bytes left in the file before anything is read or allocated, so a 98-byte
 * file claiming 2^40 array elements is refused in microseconds. The rules follow gguf.cpp of the
 * bundled llama.cpp (version 2 or 3, key and tensor name limits, tensor offsets laid out back to
 * back at the alignment, known ggml types).
 */

export type GgufScalar = number | bigint | boolean | string;

export type GgufMetaValue =
  | { kind: "scalar"; type: number; value: GgufScalar }
  /** `values` is kept for short arrays (per-layer hyperparameters), left out for long ones (vocabularies). */
  | { kind: "array"; itemType: number; length: number; values?: GgufScalar[]; vocabulary?: VocabularySummary };

/** The key of the model's token texts, summarised as a VocabularySummary while it is read. */
export const VOCABULARY_KEY = "tokenizer.ggml.tokens";
/** More tokens than any vocabulary llama.cpp was made for (the largest are about 260,000). */
export const MAX_VOCABULARY_TOKENS = 1 << 20;

/**
 * What the checks need to know of a vocabulary, read as llama.cpp indexes it (each text up to its
 * first NUL byte, as a C string), without keeping its 100,000+ texts.
 */
export interface VocabularySummary {
  /** The first token whose text an earlier token already has (llama.cpp aborts on it). */
  duplicate?: { index: number; text: string };
  /** Bytes with neither a "<0xNN>" token nor a one-byte token: SentencePiece falls back to these for text it has no piece for. */
  bytesWithoutToken: number[];
}

export interface GgufTensorEntry {
  name: string;
  dims: bigint[];
  ggmlType: number;
  /** Relative to the start of the data section. */
  offset: number;
  byteSize: number;
}

export interface GgufStructure {
  version: number;
  metadata: Map<string, GgufMetaValue>;
  tensors: GgufTensorEntry[];
  /** Where the tensor data section starts. */
  dataOffset: number;
  fileSize: number;
}

/** A structural problem: the field that is wrong and the value found there. */
export class GgufFormatError extends Error {
  override readonly name = "GgufFormatError";
  constructor(
    readonly field: string,
    readonly value: string,
    message: string,
  ) {
    super(message);
  }
}

const SCALAR_BYTES: Readonly<Record<number, number>> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const STRING = 8;
const ARRAY = 9;
const MAX_DIMS = 4;
const MAX_TENSOR_NAME = 63;
/** gguf.cpp allows 1 GiB; no real key, token or template comes near 64 MiB. */
const MAX_STRING_BYTES = 64 * 1024 * 1024;
const MAX_ARRAY_ITEMS = 1024 * 1024 * 1024;
/** Arrays up to this length keep their values (per-layer hyperparameters are at most LLAMA_MAX_LAYERS long). */
const KEPT_ARRAY_ITEMS = 1024;
/** Smallest possible key/value pair (8-byte length, 1-byte key, type, 1-byte value) and tensor info. */
const MIN_KV_BYTES = 8 + 1 + 4 + 1;
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8;
const CHUNK = 1 << 20;
const INT64_MAX = (1n << 63n) - 1n;

class BoundedReader {
  private buffer = Buffer.alloc(0);
  private bufferStart = 0;
  pos = 0;

  constructor(
    private readonly file: FileHandle,
    readonly size: number,
  ) {}

  get remaining(): number {
    return this.size - this.pos;
  }

  /** Makes `n` bytes at `pos` readable, or throws naming the field that runs past the end. */
  async need(n: number, field: string): Promise<Buffer> {
    if (n > this.remaining) {
      throw new GgufFormatError(field, `${n} bytes at offset ${this.pos}`, `the file is truncated: ${field} needs ${n} bytes at offset ${this.pos} but only ${this.remaining} are left`);
    }
    const rel = this.pos - this.bufferStart;
    if (rel < 0 || rel + n > this.buffer.length) {
      const length = Math.min(Math.max(n, CHUNK), this.remaining);
      const next = Buffer.allocUnsafe(length);
      const { bytesRead } = await this.file.read(next, 0, length, this.pos);
      if (bytesRead < n) throw new GgufFormatError(field, String(this.pos), `${field}: the file changed while it was read`);
      this.buffer = next.subarray(0, bytesRead);
      this.bufferStart = this.pos;
    }
    const start = this.pos - this.bufferStart;
    this.pos += n;
    return this.buffer.subarray(start, start + n);
  }

  async u32(field: string): Promise<number> {
    return (await this.need(4, field)).readUInt32LE(0);
  }

  async u64(field: string): Promise<bigint> {
    return (await this.need(8, field)).readBigUInt64LE(0);
  }

  /** A length-prefixed string; `keep: false` skips its bytes without decoding them. */
  async string(field: string, keep = true): Promise<string> {
    const bytes = await this.stringBytes(field);
    return keep ? bytes.toString("utf8") : "";
  }

  /** A length-prefixed string's bytes (valid until the next read). */
  async stringBytes(field: string): Promise<Buffer> {
    const length = await this.u64(`${field} length`);
    if (length > BigInt(Math.min(MAX_STRING_BYTES, this.remaining))) {
      throw new GgufFormatError(field, `length ${length}`, `${field} claims ${length} bytes but only ${this.remaining} are left in the file`);
    }
    return this.need(Number(length), field);
  }

  async scalar(type: number, field: string, keep: boolean): Promise<GgufScalar> {
    if (type === STRING) return this.string(field, keep);
    const width = SCALAR_BYTES[type];
    if (width === undefined) throw new GgufFormatError(field, `type ${type}`, `${field} has unknown GGUF value type ${type}`);
    const b = await this.need(width, field);
    switch (type) {
      case 0: return b.readUInt8(0);
      case 1: return b.readInt8(0);
      case 2: return b.readUInt16LE(0);
      case 3: return b.readInt16LE(0);
      case 4: return b.readUInt32LE(0);
      case 5: return b.readInt32LE(0);
      case 6: return b.readFloatLE(0);
      case 7: return b.readUInt8(0) !== 0;
      case 10: return b.readBigUInt64LE(0);
      case 11: return b.readBigInt64LE(0);
      default: return b.readDoubleLE(0);
    }
  }
}

/** Bounds a count read from the file by what `minBytesEach` items could occupy in the rest of it. */
function boundedCount(count: bigint, minBytesEach: number, remaining: number, field: string, limit = Number.MAX_SAFE_INTEGER): number {
  if (count > BigInt(limit) || count * BigInt(minBytesEach) > BigInt(remaining)) {
    throw new GgufFormatError(field, String(count), `${field} is ${count}, more than the ${remaining} bytes left in the file can hold`);
  }
  return Number(count);
}

async function readValue(r: BoundedReader, key: string, type: number): Promise<GgufMetaValue> {
  if (type !== ARRAY) return { kind: "scalar", type, value: await r.scalar(type, key, true) };
  const itemType = await r.u32(`${key} item type`);
  if (itemType === ARRAY) throw new GgufFormatError(key, "nested array", `${key} is an array of arrays, which GGUF does not allow`);
  const itemBytes = itemType === STRING ? 8 : SCALAR_BYTES[itemType];
  if (itemBytes === undefined) throw new GgufFormatError(key, `item type ${itemType}`, `${key} has unknown GGUF item type ${itemType}`);
  const length = boundedCount(await r.u64(`${key} length`), itemBytes, r.remaining, `${key} array length`, MAX_ARRAY_ITEMS);
  if (key === VOCABULARY_KEY && itemType === STRING) return readVocabulary(r, length);
  const keep = length <= KEPT_ARRAY_ITEMS;
  if (!keep && itemType !== STRING) {
    await r.need(length * itemBytes, key);
    return { kind: "array", itemType, length };
  }
  const values: GgufScalar[] = [];
  for (let i = 0; i < length; i++) {
    const value = await r.scalar(itemType, `${key}[${i}]`, keep);
    if (keep) values.push(value);
  }
  return keep ? { kind: "array", itemType, length, values } : { kind: "array", itemType, length };
}

async function readVocabulary(r: BoundedReader, length: number): Promise<GgufMetaValue> {
  if (length > MAX_VOCABULARY_TOKENS) {
    throw new GgufFormatError(`${VOCABULARY_KEY} array length`, String(length), `${VOCABULARY_KEY} has ${length} tokens, more than the ${MAX_VOCABULARY_TOKENS} any vocabulary llama.cpp runs has`);
  }
  const seen = new Set<string>();
  const covered = new Array<boolean>(256).fill(false);
  let duplicate: VocabularySummary["duplicate"];
  for (let i = 0; i < length; i++) {
    const raw = await r.stringBytes(`${VOCABULARY_KEY}[${i}]`);
    const nul = raw.indexOf(0);
    // latin1 keeps every byte as one character: texts compare as llama.cpp compares them.
    const text = (nul < 0 ? raw : raw.subarray(0, nul)).toString("latin1");
    if (seen.has(text)) duplicate ??= { index: i, text };
    seen.add(text);
    const byteToken = /^<0x([0-9A-F]{2})>$/.exec(text);
    if (byteToken) covered[parseInt(byteToken[1]!, 16)] = true;
    // llama.cpp's one-byte fallback is a C string, so byte 0's is the empty text.
    if (text.length === 1) covered[text.charCodeAt(0)] = true;
    if (text.length === 0) covered[0] = true;
  }
  const bytesWithoutToken = covered.flatMap((has, byte) => (has ? [] : [byte]));
  return { kind: "array", itemType: STRING, length, vocabulary: { ...(duplicate ? { duplicate } : {}), bytesWithoutToken } };
}

async function readTensorInfo(r: BoundedReader, index: number, seen: Set<string>): Promise<GgufTensorEntry> {
  const field = `tensor ${index}`;
  const name = await r.string(`${field} name`);
  if (name.length === 0 || Buffer.byteLength(name) > MAX_TENSOR_NAME) {
    throw new GgufFormatError(`${field} name`, JSON.stringify(name.slice(0, 80)), `${field} has a name of ${Buffer.byteLength(name)} bytes (1..${MAX_TENSOR_NAME} allowed)`);
  }
  if (seen.has(name)) throw new GgufFormatError(`tensor ${name}`, name, `tensor ${name} appears twice`);
  seen.add(name);
  const nDims = await r.u32(`tensor ${name} n_dims`);
  if (nDims < 1 || nDims > MAX_DIMS) throw new GgufFormatError(`tensor ${name} n_dims`, String(nDims), `tensor ${name} has ${nDims} dimensions (1..${MAX_DIMS} allowed)`);
  const dims: bigint[] = [];
  let elements = 1n;
  for (let d = 0; d < nDims; d++) {
    const dim = await r.u64(`tensor ${name} dimension ${d}`);
    if (dim === 0n || dim > INT64_MAX) throw new GgufFormatError(`tensor ${name} dimension ${d}`, String(dim), `tensor ${name} has dimension ${d} = ${dim}`);
    elements *= dim;
    if (elements > INT64_MAX) throw new GgufFormatError(`tensor ${name} dimensions`, dims.concat(dim).join("x"), `tensor ${name} has more elements than fit in 64 bits`);
    dims.push(dim);
  }
  const ggmlType = await r.u32(`tensor ${name} type`);
  const perBlock = blockElements(ggmlType);
  if (perBlock === undefined) throw new GgufFormatError(`tensor ${name} type`, String(ggmlType), `tensor ${name} has ggml type ${ggmlType}, which the bundled llama.cpp does not know`);
  if (dims[0]! % BigInt(perBlock) !== 0n) {
    throw new GgufFormatError(`tensor ${name} dimension 0`, String(dims[0]), `tensor ${name} has rows of ${dims[0]} elements, not a multiple of its type's block of ${perBlock}`);
  }
  const offset = await r.u64(`tensor ${name} offset`);
  if (offset > BigInt(r.size)) throw new GgufFormatError(`tensor ${name} offset`, String(offset), `the file is truncated or damaged: tensor ${name} starts at ${offset}, beyond the end of the file (${r.size} bytes)`);
  if (elements > BigInt(r.size) * 8n) {
    // More elements than bits in the file: its data cannot be inside the file, whatever the type.
    throw new GgufFormatError(`tensor ${name} dimensions`, dims.join("x"), `tensor ${name} (${dims.join("x")}) cannot fit in a file of ${r.size} bytes`);
  }
  return { name, dims, ggmlType, offset: Number(offset), byteSize: tensorByteSize(ggmlType, dims)! };
}

function alignmentOf(metadata: Map<string, GgufMetaValue>): number {
  const value = metadata.get("general.alignment");
  if (value === undefined) return 32;
  if (value.kind !== "scalar" || value.type !== 4) throw new GgufFormatError("general.alignment", String(value.kind === "scalar" ? value.value : "array"), "general.alignment must be a uint32");
  const alignment = value.value as number;
  if (alignment === 0 || (alignment & (alignment - 1)) !== 0) throw new GgufFormatError("general.alignment", String(alignment), `general.alignment ${alignment} is not a power of 2`);
  return alignment;
}

const align = (n: number, alignment: number) => Math.ceil(n / alignment) * alignment;

/** Reads and checks the structure of one GGUF file; throws GgufFormatError on the first problem. */
export async function readGgufStructure(path: string): Promise<GgufStructure> {
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    const r = new BoundedReader(file, size);
    const magic = (await r.need(4, "magic")).toString("latin1");
    if (magic !== "GGUF") throw new GgufFormatError("magic", JSON.stringify(magic), `the file does not start with "GGUF" (found ${JSON.stringify(magic)})`);
    const version = await r.u32("version");
    if (version !== 2 && version !== 3) throw new GgufFormatError("version", String(version), `GGUF version ${version} is not supported (2 or 3)`);
    const tensorCount = boundedCount(await r.u64("tensor_count"), MIN_TENSOR_INFO_BYTES, r.remaining, "tensor_count");
    const kvCount = boundedCount(await r.u64("metadata_kv_count"), MIN_KV_BYTES, r.remaining - tensorCount * MIN_TENSOR_INFO_BYTES, "metadata_kv_count");

    const metadata = new Map<string, GgufMetaValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = await r.string(`metadata key ${i}`);
      if (key === "") throw new GgufFormatError(`metadata key ${i}`, '""', `metadata key ${i} is empty`);
      if (metadata.has(key)) throw new GgufFormatError(key, "duplicate", `metadata key ${key} appears twice`);
      metadata.set(key, await readValue(r, key, await r.u32(`${key} type`)));
    }
    const alignment = alignmentOf(metadata);

    const seen = new Set<string>();
    const tensors: GgufTensorEntry[] = [];
    for (let i = 0; i < tensorCount; i++) tensors.push(await readTensorInfo(r, i, seen));

    const dataOffset = align(r.pos, alignment);
    let expected = 0;
    for (const t of tensors) {
      if (t.offset !== expected) {
        throw new GgufFormatError(`tensor ${t.name} offset`, String(t.offset), `tensor ${t.name} starts at data offset ${t.offset}, expected ${expected} (tensors must be aligned to ${alignment} and must not overlap)`);
      }
      expected += align(t.byteSize, alignment);
      if (dataOffset + t.offset + t.byteSize > size) {
        throw new GgufFormatError(`tensor ${t.name}`, `ends at ${dataOffset + t.offset + t.byteSize}`, `the file is truncated: tensor ${t.name} ends at byte ${dataOffset + t.offset + t.byteSize} but the file has ${size} bytes`);
      }
    }
    return { version, metadata, tensors, dataOffset, fileSize: size };
  } finally {
    await file.close();
  }
}
