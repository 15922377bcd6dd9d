import { fetchWithRetry, type SourceContext } from "@llmlb/runtime/plugin";
import { hfError, hfUnreachable, type HfTarget } from "./hf-errors.js";

export interface HfFileInfo {
  commit?: string;
  size?: number;
  sha256?: string;
}

/** `{endpoint}/{repo}/resolve/{revision}/{path}` with the revision encoded as one segment. */
export function resolveUrl(endpoint: string, repo: string, revision: string, file: string): string {
  return `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${file.split("/").map(encodeURIComponent).join("/")}`;
}

const unquote = (v: string | null) => v?.replace(/^W\//, "").replace(/^"|"$/g, "");

/**
 * HEAD of a file's resolve URL without following the redirect (as huggingface_hub does): the
 * 302 of an LFS file carries its sha256 (X-Linked-Etag), size (X-Linked-Size) and the commit
 * (X-Repo-Commit). A redirect within the hub (renamed repo) is followed with the token.
 */
export async function headFile(ctx: SourceContext, target: HfTarget, headers: Record<string, string>): Promise<HfFileInfo> {
  let url = resolveUrl(target.endpoint, target.repo, target.revision, target.file);
  const hub = new URL(target.endpoint).origin;
  for (let hop = 0; hop < 5; hop++) {
    let res: Response;
    try {
      res = await fetchWithRetry(ctx.fetch, url, { method: "HEAD", redirect: "manual", headers, signal: ctx.signal }, { retries: 3 });
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      throw hfUnreachable(err, target.endpoint);
    }
    const commit = res.headers.get("x-repo-commit") ?? undefined;
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location) {
      const next = new URL(location, url);
      if (next.origin === hub && !res.headers.get("x-linked-etag")) {
        url = next.toString();
        continue;
      }
      const size = Number(res.headers.get("x-linked-size"));
      const sha = unquote(res.headers.get("x-linked-etag"));
      return {
        ...(commit ? { commit } : {}),
        ...(Number.isSafeInteger(size) && size >= 0 && res.headers.get("x-linked-size") !== null ? { size } : {}),
        ...(sha && /^[0-9a-f]{64}$/i.test(sha) ? { sha256: sha.toLowerCase() } : {}),
      };
    }
    if (res.status === 200) {
      const length = res.headers.get("content-length");
      return { ...(commit ? { commit } : {}), ...(length !== null ? { size: Number(length) } : {}) };
    }
    throw hfError(res, target);
  }
  throw hfError(new Response(null, { status: 508 }), target);
}
