import { LlmlbError } from "../errors/index.js";

export const MAX_ID_LENGTH = 128;

/** One part of an id: letters, digits, '.', '-', '_', not starting with '.'. */
const ID_PART = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

const ALLOWED =
  "letters, digits, '.', '-' and '_', with at most one '/' between a namespace and a name " +
  `(e.g. "qwen2.5-0.5b-instruct" or "org/model-q4_k_m"); no part may start with '.', '..' is not allowed, ` +
  `at most ${MAX_ID_LENGTH} characters`;

function shown(value: unknown): string {
  const text = typeof value === "string" ? value : String(value);
  const json = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
  return json;
}

function isValidId(id: string, allowSlash: boolean): boolean {
  if (id.length === 0 || id.length > MAX_ID_LENGTH || id.includes("..")) return false;
  const parts = id.split("/");
  if (parts.length > (allowSlash ? 2 : 1)) return false;
  return parts.every((part) => ID_PART.test(part));
}

/**
 * The one check every model id goes through before it names anything on disk. Anything that
 * could escape the store (`..`, absolute paths, backslashes, control characters, NUL) fails here.
 */
export function validateModelId(id: unknown): string {
  if (typeof id !== "string" || !isValidId(id, true)) {
    throw new LlmlbError("INVALID_MODEL_ID", `invalid model id ${shown(id)}: use ${ALLOWED}`, {
      id: typeof id === "string" ? id.slice(0, MAX_ID_LENGTH) : "",
    });
  }
  return id;
}

/** Adapter ids are derived from references and never contain '/'. */
export function validateAdapterId(id: unknown): string {
  if (typeof id !== "string" || !isValidId(id, false)) {
    throw new LlmlbError("INVALID_ADAPTER_REF", `invalid adapter id ${shown(id)}: use ${ALLOWED.replace("with at most one '/' between a namespace and a name ", "without '/' ")}`);
  }
  return id;
}

/**
 * The one mapping from an id to a file system name, used for store directories, partial
 * directories and lock files. '/' becomes "%2F" ('%' is not allowed in ids, so it is reversible).
 */
export function idToFileName(id: string): string {
  return id.replace("/", "%2F");
}

/** Inverse of idToFileName; undefined for names that no valid id maps to. */
export function fileNameToId(name: string): string | undefined {
  const id = name.replace("%2F", "/");
  return isValidId(id, true) && idToFileName(id) === name ? id : undefined;
}

/** A file name a source may give for a file inside an artifact directory: one plain path segment. */
export function isSafeFileName(name: string): boolean {
  return (
    name.length > 0 &&
    name.length <= 255 &&
    !name.startsWith(".") &&
    // eslint-disable-next-line no-control-regex -- rejecting control characters is the point
    !/[/\\\0-\x1f\x7f]/.test(name) &&
    name !== "metadata.json"
  );
}

/** Same limit as MAX_ID_LENGTH (kept for callers of the first version of this module). */
export const MAX_MODEL_ID_LENGTH = MAX_ID_LENGTH;

export function isValidModelId(id: string): boolean {
  return isValidId(id, true);
}
