/**
 * Minimal GGUF v3 writer (no dependencies).
 *
 * Layout: magic "GGUF", u32 version=3, u64 tensor_count, u64 kv_count, KV pairs,
 * tensor infos (name, n_dims, dims in ggml order, ggml type, offset), zero padding to
 * `alignment`, then tensor data, each tensor starting at an `alignment`-aligned offset.
 * All values little-endian.
 */

/** GGUF metadata value types (gguf_type). */
export const GgufType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufScalarType = Exclude<(typeof GgufType)[keyof typeof GgufType], 9>;

export type GgufValue =
  | { type: GgufScalarType; value: number | bigint | boolean | string }
  | {
      type: typeof GgufType.ARRAY;
      itemType: GgufScalarType;
      values: ReadonlyArray<number | bigint | boolean | string>;
      /** Element count written in the header instead of values.length (to make hostile files). */
      declaredLength?: bigint;
    };

/** Convenience constructors for metadata values. */
export const gv = {
  u32: (value: number): GgufValue => ({ type: GgufType.UINT32, value }),
  i32: (value: number): GgufValue => ({ type: GgufType.INT32, value }),
  u64: (value: number | bigint): GgufValue => ({ type: GgufType.UINT64, value }),
  f32: (value: number): GgufValue => ({ type: GgufType.FLOAT32, value }),
  bool: (value: boolean): GgufValue => ({ type: GgufType.BOOL, value }),
  str: (value: string): GgufValue => ({ type: GgufType.STRING, value }),
  strings: (values: readonly string[]): GgufValue => ({ type: GgufType.ARRAY, itemType: GgufType.STRING, values }),
  f32s: (values: readonly number[]): GgufValue => ({ type: GgufType.ARRAY, itemType: GgufType.FLOAT32, values }),
  i32s: (values: readonly number[]): GgufValue => ({ type: GgufType.ARRAY, itemType: GgufType.INT32, values }),
};

/** ggml tensor types supported by this writer. */
export const GgmlType = { F32: 0, F16: 1 } as const;
export type TensorDtype = "f32" | "f16";

export interface GgufTensor {
  name: string;
  /** Dimensions in ggml order (ne[0] is the contiguous / innermost dimension). */
  dims: readonly number[];
  dtype: TensorDtype;
  /** Row-major data with ne[0] varying fastest; length must equal the product of dims. */
  data: Float32Array;
  /** With GgufFile.headerOnly: the ggml type and byte size to declare instead of dtype's. */
  declared?: { ggmlType: number; bytes: number };
}

export interface GgufFile {
  /** Metadata in insertion order. `general.alignment` is added if absent. */
  metadata: ReadonlyArray<readonly [string, GgufValue]>;
  tensors: readonly GgufTensor[];
  alignment?: number;
  /** Write the header and tensor infos (padded to the alignment) but no tensor data. */
  headerOnly?: boolean;
}

/** Round-to-nearest-even float32 -> IEEE binary16 bits. */
export function f32ToF16Bits(value: number): number {
  const f32 = new Float32Array([value]);
  const x = new Uint32Array(f32.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> signed zero
    mant |= 0x800000; // implicit leading one
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++; // may carry into exponent: still correct
  return sign | half;
}

class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number) { this.reserve(1); this.view.setUint8(this.length, v); this.length += 1; }
  i8(v: number) { this.reserve(1); this.view.setInt8(this.length, v); this.length += 1; }
  u16(v: number) { this.reserve(2); this.view.setUint16(this.length, v, true); this.length += 2; }
  i16(v: number) { this.reserve(2); this.view.setInt16(this.length, v, true); this.length += 2; }
  u32(v: number) { this.reserve(4); this.view.setUint32(this.length, v, true); this.length += 4; }
  i32(v: number) { this.reserve(4); this.view.setInt32(this.length, v, true); this.length += 4; }
  u64(v: number | bigint) { this.reserve(8); this.view.setBigUint64(this.length, BigInt(v), true); this.length += 8; }
  i64(v: number | bigint) { this.reserve(8); this.view.setBigInt64(this.length, BigInt(v), true); this.length += 8; }
  f32(v: number) { this.reserve(4); this.view.setFloat32(this.length, v, true); this.length += 4; }
  f64(v: number) { this.reserve(8); this.view.setFloat64(this.length, v, true); this.length += 8; }
  bytes(b: Uint8Array) { this.reserve(b.length); this.buf.set(b, this.length); this.length += b.length; }
  str(s: string) { const b = new TextEncoder().encode(s); this.u64(b.length); this.bytes(b); }
  padTo(alignment: number) { const pad = (alignment - (this.length % alignment)) % alignment; this.reserve(pad); this.length += pad; }
  result(): Uint8Array { return this.buf.slice(0, this.length); }
}

function writeScalar(out: ByteSink, type: GgufScalarType, v: number | bigint | boolean | string): void {
  switch (type) {
    case GgufType.UINT8: return out.u8(Number(v));
    case GgufType.INT8: return out.i8(Number(v));
    case GgufType.UINT16: return out.u16(Number(v));
    case GgufType.INT16: return out.i16(Number(v));
    case GgufType.UINT32: return out.u32(Number(v));
    case GgufType.INT32: return out.i32(Number(v));
    case GgufType.FLOAT32: return out.f32(Number(v));
    case GgufType.BOOL: return out.u8(v ? 1 : 0);
    case GgufType.STRING: return out.str(String(v));
    case GgufType.UINT64: return out.u64(typeof v === "bigint" ? v : Number(v));
    case GgufType.INT64: return out.i64(typeof v === "bigint" ? v : Number(v));
    case GgufType.FLOAT64: return out.f64(Number(v));
  }
}

function tensorByteSize(t: GgufTensor): number {
  return t.declared?.bytes ?? t.data.length * (t.dtype === "f32" ? 4 : 2);
}

/** Serialise a complete GGUF v3 file. Deterministic: same input, same bytes. */
export function encodeGguf(file: GgufFile): Uint8Array {
  const alignment = file.alignment ?? 32;
  const metadata = [...file.metadata];
  if (!metadata.some(([k]) => k === "general.alignment")) metadata.push(["general.alignment", gv.u32(alignment)]);

  const out = new ByteSink();
  out.bytes(new TextEncoder().encode("GGUF"));
  out.u32(3);
  out.u64(file.tensors.length);
  out.u64(metadata.length);

  for (const [key, value] of metadata) {
    out.str(key);
    out.u32(value.type);
    if (value.type === GgufType.ARRAY) {
      out.u32(value.itemType);
      out.u64(value.declaredLength ?? value.values.length);
      for (const item of value.values) writeScalar(out, value.itemType, item);
    } else {
      writeScalar(out, value.type, value.value);
    }
  }

  let offset = 0;
  for (const t of file.tensors) {
    const expected = t.dims.reduce((a, b) => a * b, 1);
    if (!file.headerOnly && expected !== t.data.length) throw new Error(`tensor ${t.name}: dims ${t.dims.join("x")} != data length ${t.data.length}`);
    out.str(t.name);
    out.u32(t.dims.length);
    for (const d of t.dims) out.u64(d);
    out.u32(t.declared?.ggmlType ?? (t.dtype === "f32" ? GgmlType.F32 : GgmlType.F16));
    out.u64(offset);
    offset += tensorByteSize(t);
    offset += (alignment - (offset % alignment)) % alignment;
  }

  out.padTo(alignment);
  if (file.headerOnly) return out.result();
  for (const t of file.tensors) {
    if (t.dtype === "f32") for (const x of t.data) out.f32(x);
    else for (const x of t.data) out.u16(f32ToF16Bits(x));
    out.padTo(alignment);
  }
  return out.result();
}
