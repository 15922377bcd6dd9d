/**
 * HTTP byte-range parsing shared by every stand-in that serves file bodies
 * (HF hub + CDN, GitHub asset host, router blobs).
 */

export type RangeDecision =
  /** Serve the whole representation with 200. */
  | { kind: "full" }
  /** Serve bytes [start, end] (inclusive) with 206. */
  | { kind: "partial"; start: number; end: number }
  /** 416 with `Content-Range: bytes * /size`. */
  | { kind: "unsatisfiable" };

/**
 * Parses a `Range` header against a representation of `size` bytes (RFC 9110 §14).
 * Supported: `bytes=N-`, `bytes=N-M` (M clamped to size-1), `bytes=-S` (suffix).
 * Multi-range requests and malformed or inverted ranges are ignored (→ full 200), as the RFC allows.
 * A first-byte-pos at or past the end (or `bytes=-0`, or any range on an empty file) is unsatisfiable.
 */
export function parseRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: "full" };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return { kind: "full" };
  const [, a = "", b = ""] = m;
  if (a === "" && b === "") return { kind: "full" };
  if (a === "") {
    const suffix = Number(b);
    if (suffix === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "partial", start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(a);
  if (b !== "" && Number(b) < start) return { kind: "full" };
  if (start >= size) return { kind: "unsatisfiable" };
  const end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
  return { kind: "partial", start, end };
}

/**
 * `If-Range` evaluation: the range is honoured only when the validator matches.
 * An entity tag must match strongly (weak tags never match); an HTTP-date must equal Last-Modified.
 */
export function ifRangeAllows(ifRange: string | undefined, etag: string, lastModified?: Date): boolean {
  if (ifRange === undefined) return true;
  const v = ifRange.trim();
  if (v.startsWith('"') || v.startsWith("W/")) return v === etag;
  if (!lastModified) return false;
  const t = Date.parse(v);
  return Number.isFinite(t) && Math.floor(t / 1000) === Math.floor(lastModified.getTime() / 1000);
}

/** Full decision for a request: applies If-Range, then Range. */
export function decideRange(
  headers: { range?: string | undefined; "if-range"?: string | undefined },
  size: number,
  etag: string,
  lastModified?: Date,
): RangeDecision {
  if (headers.range === undefined) return { kind: "full" };
  if (!ifRangeAllows(headers["if-range"], etag, lastModified)) return { kind: "full" };
  return parseRange(headers.range, size);
}
