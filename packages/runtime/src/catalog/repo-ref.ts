import { LlmlbError } from "../errors/index.js";

/** What a RegisterModel "repo" value points at. */
export interface RepoRef {
  /** "org/name". */
  repo: string;
  /** Revision named in a blob/resolve/tree URL. */
  revision?: string;
  /** File named in a blob/resolve URL (may contain '/'). */
  filename?: string;
}

const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;
const HUB_HOSTS = new Set(["huggingface.co", "www.huggingface.co", "hf.co"]);
const FORMS =
  '"org/name", https://huggingface.co/org/name, …/blob/<revision>/<file>.gguf or …/resolve/<revision>/<file>.gguf';

export function isRepoId(value: string): boolean {
  return REPO_ID.test(value) && !value.includes("..");
}

/** A file's path inside a repository: relative, with no empty, "." or ".." segment, no backslash or NUL. */
export function isRepoFilePath(file: unknown): boolean {
  return typeof file === "string" && !/[\\\0]/.test(file) && file.split("/").every((segment) => segment !== "" && segment !== "." && segment !== "..");
}

/**
 * Parses a repo id or a Hugging Face URL (huggingface.co, hf.co, or the configured endpoint's
 * host, including a mirror's path prefix). Throws INVALID_REPO saying which forms are accepted.
 */
export function parseRepoRef(input: string, endpoint: string): RepoRef {
  const value = input.trim();
  if (isRepoId(value)) return { repo: value };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(input, "it is neither a repo id nor a URL");
  }
  const base = new URL(endpoint);
  const basePath = base.pathname.replace(/\/+$/, "");
  let pathname = url.pathname;
  if (url.host === base.host && basePath && (pathname === basePath || pathname.startsWith(`${basePath}/`))) {
    pathname = pathname.slice(basePath.length);
  } else if (!HUB_HOSTS.has(url.hostname) && url.host !== base.host) {
    throw invalid(input, `the host ${url.host} is not huggingface.co or the configured endpoint ${base.host}`);
  }
  let segments: string[];
  try {
    segments = pathname.split("/").filter((s) => s !== "").map((s) => decodeURIComponent(s));
  } catch {
    throw invalid(input, "the URL path is not validly encoded");
  }
  if (segments[0] === "models") segments = segments.slice(1);
  const repo = segments.slice(0, 2).join("/");
  if (segments.length < 2 || !isRepoId(repo)) throw invalid(input, "the URL does not name an org/name repository");
  const [kind, revision, ...rest] = segments.slice(2);
  if (kind === undefined) return { repo };
  if (kind === "tree" && revision) return { repo, revision };
  if ((kind === "blob" || kind === "resolve") && revision && rest.length > 0) {
    const filename = rest.join("/");
    if (rest.some((s) => s === "..")) throw invalid(input, "the file path contains '..'");
    return { repo, revision, filename };
  }
  throw invalid(input, "the URL is not a repository, blob or resolve link");
}

function invalid(input: string, why: string): LlmlbError {
  return new LlmlbError("INVALID_REPO", `cannot register "${input}": ${why}; expected ${FORMS}`, { repo: input });
}
