import { createHash } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { LlmlbError } from "../errors/index.js";
import { MAX_ID_LENGTH, validateAdapterId } from "../store/model-id.js";

/** A LoRA adapter reference, parsed. */
export type AdapterRef =
  | { scheme: "github"; owner: string; repo: string; tag: string; asset: string }
  | { scheme: "hf"; repo: string; revision?: string; path: string }
  | { scheme: "path"; path: string };

const FORMS = `"github:owner/repo@tag/asset", "hf:org/repo/path/file.gguf" (optionally "hf:org/repo@revision/path"), or an absolute path to a .gguf file`;

function invalid(ref: string, why: string): LlmlbError {
  return new LlmlbError("INVALID_ADAPTER_REF", `invalid adapter reference ${JSON.stringify(ref.slice(0, 200))}: ${why}; use ${FORMS}`, {
    ref: ref.slice(0, 200),
  });
}

const SEGMENT = /^[A-Za-z0-9_.-]+$/;

function segments(ref: string, value: string, what: string): string[] {
  const parts = value.split("/");
  if (parts.some((p) => p === "" || p === "." || p === ".." || !SEGMENT.test(p))) throw invalid(ref, `${what} has an empty, '..' or unusual segment`);
  return parts;
}

/** Parses an adapter reference; anything else is INVALID_ARGUMENT / INVALID_ADAPTER_REF. */
export function parseAdapterRef(ref: unknown): AdapterRef {
  if (typeof ref !== "string" || ref.trim() === "") throw invalid(String(ref ?? ""), "it is empty");
  // eslint-disable-next-line no-control-regex -- rejecting control characters is the point
  if (/[\0-\x1f\x7f\\]/.test(ref)) throw invalid(ref, "it contains control characters or backslashes");
  if (ref.startsWith("github:")) {
    // The tag may contain '/' (release/v1); the asset is the last segment.
    const m = /^github:([^/@]+)\/([^/@]+)@(.+)\/([^/]+)$/.exec(ref);
    if (!m) throw invalid(ref, "a GitHub reference names owner/repo@tag/asset");
    const [, owner, repo, tag, asset] = m as unknown as [string, string, string, string, string];
    for (const [value, what] of [[owner, "owner"], [repo, "repo"], [tag, "tag"], [asset, "asset"]] as const) segments(ref, value, what);
    if (asset.startsWith(".")) throw invalid(ref, "the asset name starts with '.'");
    return { scheme: "github", owner, repo, tag, asset };
  }
  if (ref.startsWith("hf:")) {
    const m = /^hf:([^/@]+)\/([^/@]+)(?:@([^/]+))?\/(.+)$/.exec(ref);
    if (!m) throw invalid(ref, "a Hugging Face reference names org/repo/path");
    const [, org, name, revision, file] = m as unknown as [string, string, string, string | undefined, string];
    segments(ref, `${org}/${name}`, "repo");
    segments(ref, file, "path");
    if (revision !== undefined) segments(ref, revision, "revision");
    return { scheme: "hf", repo: `${org}/${name}`, ...(revision ? { revision } : {}), path: file };
  }
  const expanded = ref === "~" || ref.startsWith("~/") ? path.join(os.homedir(), ref.slice(1)) : ref;
  if (!path.isAbsolute(expanded)) throw invalid(ref, "a local adapter must be given by absolute path");
  if (!expanded.toLowerCase().endsWith(".gguf")) throw invalid(ref, "a local adapter must be a .gguf file");
  return { scheme: "path", path: path.normalize(expanded) };
}

const clean = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, "_");

/** The store id of an adapter reference, e.g. "github--owner--repo--v1--style.gguf". */
export function adapterIdFromRef(ref: string): string {
  const parsed = parseAdapterRef(ref);
  const parts =
    parsed.scheme === "github"
      ? ["github", parsed.owner, parsed.repo, parsed.tag, parsed.asset]
      : parsed.scheme === "hf"
        ? ["hf", ...parsed.repo.split("/"), ...(parsed.revision ? [parsed.revision] : []), ...parsed.path.split("/")]
        : // Two files with one name in different folders are different adapters.
          ["local", createHash("sha256").update(parsed.path).digest("hex").slice(0, 8), path.basename(parsed.path)];
  let id = parts.map(clean).join("--");
  if (id.length > MAX_ID_LENGTH) {
    id = `${id.slice(0, MAX_ID_LENGTH - 17)}-${createHash("sha256").update(ref).digest("hex").slice(0, 16)}`;
  }
  return validateAdapterId(id.replace(/^\.+/, "_"));
}
