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
