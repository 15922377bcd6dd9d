import { LlmlbError, retryAfterMs } from "@llmlb/runtime/plugin";

export interface HfTarget {
  endpoint: string;
  repo: string;
  revision: string;
  file: string;
  hasToken: boolean;
}

/** Turns a Hugging Face error answer (status + X-Error-Code, hf-http.md) into a clear LlmlbError. */
export function hfError(res: Response, t: HfTarget): LlmlbError {
  const code = res.headers.get("x-error-code") ?? "";
  const host = new URL(t.endpoint).host;
  const page = `${t.endpoint}/${t.repo}`;
  const meta = { repo: t.repo, file: t.file, revision: t.revision, http_status: String(res.status), ...(code ? { hf_error_code: code } : {}) };
  if (res.status === 429) {
    const seconds = Math.ceil((retryAfterMs(res.headers) ?? 0) / 1000);
    return new LlmlbError("RATE_LIMITED", `${host} rate-limits this node (HTTP 429); try again in ${seconds} s${t.hasToken ? "" : ", or set HF_TOKEN for a higher limit"}`, {
      ...meta, retry_after_seconds: String(seconds),
    });
  }
  if (code === "GatedRepo") {
    const waiting = t.hasToken ? " (the account of HF_TOKEN has not been granted access yet)" : "";
    return new LlmlbError("GATED_REPO", `gated: request access on the model page ${page}, then set HF_TOKEN${waiting}`, meta);
  }
  if (code === "RepoNotFound") {
    const hint = t.hasToken ? " (or HF_TOKEN cannot see it)" : "; if it is private, set HF_TOKEN to a token that can read it";
    return new LlmlbError("REPO_NOT_FOUND", `repository ${t.repo} does not exist on ${host}${hint}`, meta);
  }
  if (code === "RevisionNotFound") {
    return new LlmlbError("REVISION_NOT_FOUND", `revision "${t.revision}" does not exist in ${t.repo} on ${host}; fix the revision in the catalog entry`, meta);
  }
  if (code === "EntryNotFound" || res.status === 404) {
    return new LlmlbError("FILE_NOT_FOUND", `${t.repo} has no file ${t.file} at revision "${t.revision}" on ${host}`, meta);
  }
  if (res.status === 401) return new LlmlbError("AUTH_REQUIRED", `${host} rejected HF_TOKEN (HTTP 401); check the token`, meta);
  if (res.status === 403) {
    const said = res.headers.get("x-error-message");
    return new LlmlbError("ACCESS_DENIED", `${host} refused ${t.repo} (HTTP 403)${said ? `: ${said}` : ""}`, meta);
  }
  return new LlmlbError("SOURCE_UNAVAILABLE", `${host} answered HTTP ${res.status} for ${t.repo}/${t.file}`, meta);
}

/** A network failure talking to the hub: the next source should be tried. */
export function hfUnreachable(err: unknown, endpoint: string): LlmlbError {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  const why = typeof cause?.code === "string" ? cause.code : typeof cause?.message === "string" ? cause.message : (err as Error).message;
  return new LlmlbError("SOURCE_UNAVAILABLE", `Hugging Face at ${endpoint} is unreachable (${why})`, { endpoint }, { cause: err });
}
