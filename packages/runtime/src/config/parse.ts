import os from "node:os";
import path from "node:path";

/** Parses one raw setting value; throws a plain Error whose message says what was expected. */
export type Parser<T> = (raw: unknown) => T;

const SIZE_UNITS: Record<string, number> = {
  "": 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
};

export const parseString: Parser<string> = (raw) => {
  if (typeof raw !== "string") throw new Error("expected a string");
  return raw;
};

export const parseInteger =
  (min: number, max: number): Parser<number> =>
  (raw) => {
    const value = typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : NaN;
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new Error(`expected a whole number from ${min} to ${max}`);
    }
    return value;
  };

export const parsePort = parseInteger(0, 65535);

export const parseBoolean: Parser<boolean> = (raw) => {
  if (typeof raw === "boolean") return raw;
  if (typeof raw === "string") {
    const v = raw.trim().toLowerCase();
    if (["1", "true", "yes", "on"].includes(v)) return true;
    if (["0", "false", "no", "off", ""].includes(v)) return false;
  }
  throw new Error("expected true or false");
};

export const parseEnum =
  <const T extends string>(values: readonly T[]): Parser<T> =>
  (raw) => {
    if (typeof raw === "string" && (values as readonly string[]).includes(raw.trim().toLowerCase())) {
      return raw.trim().toLowerCase() as T;
    }
    throw new Error(`expected one of ${values.join(", ")}`);
  };

export const parseUrl: Parser<string> = (raw) => {
  if (typeof raw !== "string") throw new Error("expected a URL");
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new Error("expected an http(s) URL such as https://host:port");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("expected an http(s) URL");
  // fetch refuses such a URL, and errors that name the address would carry the password to clients.
  if (url.username || url.password) {
    throw new Error("expected a URL without a user name or password; give the credential in its own setting (LLMLB_ROUTER_API_KEY, HF_TOKEN, LLMLB_API_KEY)");
  }
  return url.toString().replace(/\/+$/, "");
};

/** The shared state store: "" (the embedded SQLite file), redis(s)://… or postgres(ql)://… */
export const parseStateUrl: Parser<string> = (raw) => {
  if (typeof raw !== "string") throw new Error("expected a redis:// or postgres:// URL");
  const value = raw.trim();
  if (value === "") return "";
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error("expected a redis://host:port or postgres://user@host:port/db URL");
  }
  if (!["redis:", "rediss:", "postgres:", "postgresql:"].includes(url.protocol)) {
    throw new Error(`expected redis://, rediss://, postgres:// or postgresql://, not ${url.protocol}//`);
  }
  return value;
};

/** A list from a JSON array or a comma-separated string. */
export const parseList =
  <T>(item: Parser<T>, separator: string | RegExp = ","): Parser<T[]> =>
  (raw) => {
    const parts = Array.isArray(raw)
      ? raw
      : typeof raw === "string"
        ? raw.split(separator).map((s) => s.trim()).filter((s) => s !== "")
        : undefined;
    if (!parts) throw new Error("expected a list");
    return parts.map((part, index) => {
      try {
        return item(part);
      } catch (err) {
        throw new Error(`item ${index + 1}: ${(err as Error).message}`);
      }
    });
  };

/** Bytes, from a number or text like "512MiB", "8 GB", "1.5g". */
export const parseSize: Parser<number> = (raw) => {
  if (typeof raw === "number" && Number.isFinite(raw) && raw >= 0) return Math.floor(raw);
  if (typeof raw === "string") {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(raw);
    const unit = match?.[2]?.toLowerCase() ?? "";
    if (match && unit in SIZE_UNITS) return Math.floor(Number(match[1]) * (SIZE_UNITS[unit] ?? 1));
  }
  throw new Error('expected a size in bytes, e.g. 1073741824, "512MiB" or "8GB"');
};

export const parsePath: Parser<string> = (raw) => {
  if (typeof raw !== "string" || raw.trim() === "") throw new Error("expected a file system path");
  const value = raw.trim();
  const expanded = value === "~" || value.startsWith("~/") ? path.join(os.homedir(), value.slice(1)) : value;
  return path.resolve(expanded);
};

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Milliseconds from a number of seconds or text like "5m", "30s", "1h30m", "250ms"; a negative
 * value ("-1", "-5m") means forever and comes back as -1. A negative zero ("-0", "-0s") is zero,
 * as Ollama's Go durations read it: at once, not forever.
 */
export const parseDuration: Parser<number> = (raw) => {
  const fail = () => new Error('expected a duration such as "5m", "30s", "1h" or seconds (0 = at once, -1 = forever)');
  if (typeof raw === "number") {
    if (!Number.isFinite(raw)) throw fail();
    return raw < 0 ? -1 : timerDuration(raw * 1000);
  }
  if (typeof raw !== "string") throw fail();
  const text = raw.trim().toLowerCase();
  if (text.startsWith("-")) {
    // The magnitude follows the same grammar, so "-5 parsecs" is refused, not read as forever.
    if (text.startsWith("--")) throw fail();
    return parseDuration(text.slice(1)) === 0 ? 0 : -1;
  }
  if (/^\d+(\.\d+)?$/.test(text)) return timerDuration(Number(text) * 1000);
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) throw fail();
  return timerDuration(parts.reduce((ms, p) => ms + Number(p[1]) * DURATION_UNITS_MS[p[2]!]!, 0));
};

/** The longest delay a Node.js timer takes (about 24.8 days); a longer one would fire after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Milliseconds, or -1 (forever) for a duration no timer can wait for: longer than MAX_TIMER_MS. */
function timerDuration(ms: number): number {
  // + 0: a negative zero (keep_alive: -0) is plain 0.
  return ms > MAX_TIMER_MS ? -1 : Math.round(ms) + 0;
}

/**
 * Tokens per sequence a setting or a registration may ask for. Below the minimum no chat template
 * and question fit; above the maximum (not an assert in llama.cpp) every size estimate overflows.
 */
export const MIN_CONTEXT_LENGTH = 256;
export const MAX_CONTEXT_LENGTH = 1 << 24;

/** A context length in tokens, or "auto" (returned as 0): the largest that fits, up to the trained length. */
export const parseContextSize: Parser<number> = (raw) => {
  if (typeof raw === "string" && raw.trim().toLowerCase() === "auto") return 0;
  const expected = `expected "auto" (or 0) or a number of tokens from ${MIN_CONTEXT_LENGTH} to ${MAX_CONTEXT_LENGTH} such as 16384`;
  let tokens: number;
  try {
    tokens = parseInteger(0, MAX_CONTEXT_LENGTH)(raw);
  } catch {
    throw new Error(expected);
  }
  if (tokens !== 0 && tokens < MIN_CONTEXT_LENGTH) throw new Error(expected);
  return tokens;
};

export function formatDuration(ms: number): string {
  if (ms < 0) return "forever";
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
