import { isSafeFileName } from "../store/model-id.js";
import type { FileMirror, LocateResult, RemoteFile } from "./contract.js";

const SHA256 = /^[0-9a-fA-F]{64}$/;

/** Thrown for a provider answer that does not follow the contract; the message says what is wrong. */
export class MalformedResultError extends Error {
  override readonly name = "MalformedResultError";
}

const fail = (what: string): never => {
  throw new MalformedResultError(what);
};

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === "string" ? value : fail(`${field} must be a string`);
}

function optionalSha(value: unknown, field: string): string | undefined {
  if (value === undefined || value === "") return undefined;
  return typeof value === "string" && SHA256.test(value) ? value.toLowerCase() : fail(`${field} must be 64 hex digits`);
}

function httpUrl(value: unknown, at: string): string {
  let url: URL | undefined;
  try {
    url = new URL(String(value));
  } catch {
    fail(`${at} must be an absolute http(s) URL`);
  }
  if (url!.protocol !== "http:" && url!.protocol !== "https:") fail(`${at} must be an http(s) URL`);
  return url!.toString();
}

function optionalHeaders(value: unknown, at: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "object" || value === null || Object.values(value).some((v) => typeof v !== "string")) fail(`${at} must map names to strings`);
  return { ...(value as Record<string, string>) };
}

function mirrorList(value: unknown, at: string): FileMirror[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) return fail(`${at} must be a list of {url, headers?}`);
  return value.map((m: unknown, i) => {
    const mirror = m as Record<string, unknown>;
    if (typeof mirror !== "object" || mirror === null) fail(`${at}[${i}] must be an object`);
    const headers = optionalHeaders(mirror.headers, `${at}[${i}].headers`);
    return { url: httpUrl(mirror.url, `${at}[${i}].url`), ...(headers ? { headers } : {}) };
  });
}

function remoteFile(value: unknown, index: number): RemoteFile {
  const f = value as Record<string, unknown>;
  const at = `files[${index}]`;
  if (typeof f !== "object" || f === null) fail(`${at} must be an object`);
  if (typeof f.name !== "string" || !isSafeFileName(f.name)) fail(`${at}.name must be a plain file name (no '/', not starting with '.')`);
  const url = httpUrl(f.url, `${at}.url`);
  if (f.size !== undefined && (!Number.isSafeInteger(f.size) || (f.size as number) < 0)) fail(`${at}.size must be a whole number of bytes`);
  const headers = optionalHeaders(f.headers, `${at}.headers`);
  const sha256 = optionalSha(f.sha256, `${at}.sha256`);
  const mirrors = mirrorList(f.mirrors, `${at}.mirrors`);
  return {
    name: f.name as string,
    url,
    ...(f.size !== undefined ? { size: f.size as number } : {}),
    ...(sha256 ? { sha256 } : {}),
    ...(headers ? { headers } : {}),
    ...(mirrors && mirrors.length > 0 ? { mirrors } : {}),
  };
}

/** Checks and normalises what a provider's locate() returned (sha256 lower-cased, URLs parsed). */
export function validateLocateResult(value: unknown): LocateResult {
  const r = value as Record<string, unknown>;
  if (typeof r !== "object" || r === null) return fail("locate() must return an object with a type");
  switch (r.type) {
    case "not-here": {
      const reason = optionalString(r.reason, "reason") ?? "not available here";
      const code = optionalString(r.code, "code");
      return { type: "not-here", reason, ...(code ? { code } : {}) };
    }
    case "local": {
      if (!Array.isArray(r.files) || r.files.length === 0 || !r.files.every((p) => typeof p === "string" && p.length > 0)) {
        return fail("a local result needs files: a non-empty list of paths");
      }
      const revision = optionalString(r.revision, "revision");
      const sha256 = optionalSha(r.sha256, "sha256");
      return { type: "local", files: [...(r.files as string[])], ...(revision ? { revision } : {}), ...(sha256 ? { sha256 } : {}) };
    }
    case "remote": {
      if (!Array.isArray(r.files) || r.files.length === 0) return fail("a remote result needs files: a non-empty list");
      const files = r.files.map(remoteFile);
      if (new Set(files.map((f) => f.name)).size !== files.length) fail("file names must be unique");
      const revision = optionalString(r.revision, "revision");
      return { type: "remote", files, ...(revision ? { revision } : {}) };
    }
    default:
      return fail(`type must be "local", "remote" or "not-here", got ${JSON.stringify(r.type)}`);
  }
}
