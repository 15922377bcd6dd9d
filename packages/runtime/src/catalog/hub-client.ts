import { LlmlbError, isAbortError } from "../errors/index.js";
import { linkedSignal } from "../events/linked-signal.js";
import type { RepoFile } from "./gguf-files.js";

/** The parts of GET /api/models/{repo} the catalog uses. */
export interface HubModelInfo {
  id: string;
  /** Commit the answer describes. */
  sha?: string;
  gated: false | "auto" | "manual";
  downloads?: number;
  likes?: number;
  pipelineTag?: string;
  files: RepoFile[];
  /** Parameter count from the Hub's GGUF summary. */
  parameterCount?: number;
}

/** The Hub answered (info), or did not (unreachable, with why): timeouts, refused connections, 5xx, 429. */
export type HubLookup = { ok: true; info: HubModelInfo } | { ok: false; reason: string };

export interface HubClientOptions {
  /** HF_ENDPOINT, e.g. https://huggingface.co. */
  endpoint: string;
  /** HF_TOKEN; sent only to the endpoint's own host. */
  token?: string;
  timeoutMs: number;
  fetch?: typeof fetch;
}

/**
 * A small client of the Hub's model API. Definite answers about the repo (missing, gated, bad
 * token) throw LlmlbErrors with reasons; a Hub that does not answer is a value, not an error, so
 * callers can carry on with what they know.
 */
export class HubClient {
  private readonly endpoint: URL;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: HubClientOptions) {
    this.endpoint = new URL(options.endpoint.replace(/\/+$/, "") + "/");
    this.fetchImpl = options.fetch ?? fetch;
  }

  get endpointUrl(): string {
    return this.endpoint.href.replace(/\/$/, "");
  }

  async modelInfo(repo: string, opts: { revision?: string; blobs?: boolean; signal?: AbortSignal } = {}): Promise<HubLookup> {
    const revisionPath = opts.revision ? `/revision/${encodeURIComponent(opts.revision)}` : "";
    const url = new URL(`api/models/${repo}${revisionPath}`, this.endpoint);
    if (opts.blobs) url.searchParams.set("blobs", "true");
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    // The caller's signal may live long (the hub-info cache's): linked only for this lookup.
    const linked = opts.signal ? linkedSignal(opts.signal, timeout) : undefined;
    try {
      return await this.lookup(url, repo, opts, linked?.signal ?? timeout, timeout);
    } finally {
      linked?.dispose();
    }
  }

  private async lookup(url: URL, repo: string, opts: { revision?: string; signal?: AbortSignal }, signal: AbortSignal, timeout: AbortSignal): Promise<HubLookup> {
    let response: Response;
    try {
      response = await this.fetchImpl(url, { headers: this.headersFor(url), signal });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      if (timeout.aborted || isAbortError(err)) return { ok: false, reason: `no answer within ${this.options.timeoutMs} ms` };
      return { ok: false, reason: describeNetworkError(err) };
    }
    if (response.ok) {
      try {
        return { ok: true, info: parseModelInfo(await response.json(), repo) };
      } catch (err) {
        if (timeout.aborted) return { ok: false, reason: `no complete answer within ${this.options.timeoutMs} ms` };
        return { ok: false, reason: `unreadable answer (${(err as Error).message})` };
      }
    }
    await response.body?.cancel().catch(() => undefined);
    if (response.status === 408 || response.status === 429 || response.status >= 500) {
      return { ok: false, reason: `HTTP ${response.status}` };
    }
    throw this.repoError(response, repo, opts.revision);
  }

  private headersFor(url: URL): Record<string, string> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.options.token && url.host === this.endpoint.host) headers.authorization = `Bearer ${this.options.token}`;
    return headers;
  }

  private repoError(response: Response, repo: string, revision: string | undefined): LlmlbError {
    const code = response.headers.get("x-error-code") ?? "";
    const where = `on ${this.endpointUrl}`;
    const meta = { repo, status: String(response.status) };
    if (code === "GatedRepo") {
      return new LlmlbError("GATED_REPO", `${repo} is gated: request access on its model page, then set HF_TOKEN`, meta);
    }
    if (code === "RevisionNotFound") {
      return new LlmlbError("INVALID_REPO", `revision "${revision ?? "main"}" of ${repo} was not found ${where}`, meta);
    }
    if (response.status === 401 && code !== "RepoNotFound") {
      return new LlmlbError("ACCESS_DENIED", `the Hugging Face token was rejected by ${this.endpointUrl}; check HF_TOKEN`, meta);
    }
    if (response.status === 401 || response.status === 404) {
      const hint = this.options.token ? "" : " (if it is private, set HF_TOKEN to a token that can read it)";
      return new LlmlbError("INVALID_REPO", `repository ${repo} was not found ${where}${hint}`, meta);
    }
    if (response.status === 403) {
      return new LlmlbError("ACCESS_DENIED", `access to ${repo} is denied ${where} (the repository may be disabled)`, meta);
    }
    return new LlmlbError("INVALID_REPO", `${this.endpointUrl} refused ${repo} with HTTP ${response.status}`, meta);
  }
}

function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (cause && typeof cause.code === "string") return cause.code;
  if (cause && typeof cause.message === "string") return cause.message;
  return err instanceof Error ? err.message : String(err);
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** Reads the model-info JSON defensively (no field is trusted to exist). */
export function parseModelInfo(body: unknown, repo: string): HubModelInfo {
  if (!isRecord(body)) throw new Error("model info is not an object");
  const siblings = Array.isArray(body.siblings) ? body.siblings : [];
  const files: RepoFile[] = [];
  for (const sibling of siblings) {
    if (!isRecord(sibling)) continue;
    const path = str(sibling.rfilename);
    if (!path) continue;
    const lfs = isRecord(sibling.lfs) ? sibling.lfs : undefined;
    const size = num(lfs?.size) ?? num(sibling.size);
    const sha256 = str(lfs?.sha256)?.toLowerCase();
    files.push({ path, ...(size !== undefined ? { size } : {}), ...(sha256 && /^[0-9a-f]{64}$/.test(sha256) ? { sha256 } : {}) });
  }
  const gated = body.gated === "auto" || body.gated === "manual" ? body.gated : false;
  const gguf = isRecord(body.gguf) ? body.gguf : undefined;
  const downloads = num(body.downloads);
  const likes = num(body.likes);
  const sha = str(body.sha);
  const pipelineTag = str(body.pipeline_tag);
  const parameterCount = num(gguf?.total);
  return {
    id: str(body.id) ?? repo,
    gated,
    files,
    ...(sha ? { sha } : {}),
    ...(downloads !== undefined ? { downloads } : {}),
    ...(likes !== undefined ? { likes } : {}),
    ...(pipelineTag ? { pipelineTag } : {}),
    ...(parameterCount !== undefined && parameterCount > 0 ? { parameterCount: Math.round(parameterCount) } : {}),
  };
}
