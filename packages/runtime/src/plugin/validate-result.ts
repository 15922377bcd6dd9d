import { isSafeFileName } from "../store/model-id.js";
import type { LocateResult, RemoteFile } from "./contract.js";

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

function remoteFile(value: unknown, index: number): RemoteFile {
  const f = value as Record<string, unknown>;
  const at = `files[${index}]`;
  if (typeof f !== "object" || f === null) fail(`${at} must be an object`);
  if (typeof f.name !== "string" || !isSafeFileName(f.name)) fail(`${at}.name must be a plain file name (no '/', not starting with '.')`);
  let url: URL | undefined;
  try {
    url = new URL(String(f.url));
  } catch {
    fail(`${at}.url must be an absolute http(s) URL`);
  }
  if (url!.protocol !== "http:" && url!.protocol !== "https:") fail(`${at}.url must be an http(s) URL`);
  if (f.size !== undefined && (!Number.isSafeInteger(f.size) || (f.size as number) < 0)) fail(`${at}.size must be a whole number of bytes`);
  const headers = f.headers;
  if (headers !== undefined && (typeof headers !== "object" || headers === null || Object.values(headers).some((v) => typeof v !== "string"))) {
    fail(`${at}.headers must map names to strings`);
  }
  const sha256 = optionalSha(f.sha256, `${at}.sha256`);
  return {
    name: f.name as string,
    url: url!.toString(),
    ...(f.size !== undefined ? { size: f.size as number } : {}),
    ...(sha256 ? { sha256 } : {}),
    ...(headers ? { headers: { ...(headers as Record<string, string>) } } : {}),
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
