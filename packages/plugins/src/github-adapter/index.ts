import { definePlugin, LlmlbError, type LocateResult, type SourceContext } from "@llmlb/runtime/plugin";
import { stringOption } from "../options.js";
import { parseGithubRef, type GithubAssetRef } from "./parse-github-ref.js";

export { parseGithubRef, type GithubAssetRef } from "./parse-github-ref.js";

/** GitHub's public web base, when the node passes no githubUrl. */
const DEFAULT_GITHUB = "https://github.com";

/** REST API base for a GitHub web base URL: api.github.com for github.com, /api/v3 for Enterprise. */
export function githubApiBase(webBase: string, override?: unknown): string {
  if (typeof override === "string" && override) return override.replace(/\/+$/, "");
  return new URL(webBase).host === "github.com" ? "https://api.github.com" : `${webBase.replace(/\/+$/, "")}/api/v3`;
}

interface ReleaseAsset {
  name?: unknown;
  size?: unknown;
  digest?: unknown;
}

/** Size and sha256 of the asset from the releases API, when it answers (the digest enables verification). */
async function assetFacts(ref: GithubAssetRef, apiBase: string, headers: Record<string, string>, ctx: SourceContext) {
  try {
    const res = await ctx.fetch(`${apiBase}/repos/${ref.owner}/${ref.repo}/releases/tags/${encodeURIComponent(ref.tag)}`, {
      headers: { ...headers, accept: "application/vnd.github+json" },
      signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(10_000)]),
    });
    if (!res.ok) {
      await res.body?.cancel();
      return { status: res.status };
    }
    const release = (await res.json()) as { assets?: ReleaseAsset[] };
    const asset = release.assets?.find((a) => a.name === ref.asset);
    if (!asset) return { status: 404 };
    const digest = typeof asset.digest === "string" && /^sha256:[0-9a-f]{64}$/.test(asset.digest) ? asset.digest.slice(7) : undefined;
    return { status: 200, size: typeof asset.size === "number" ? asset.size : undefined, sha256: digest };
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    return { status: 0 };
  }
}

/**
 * LoRA adapters from GitHub Releases: `github:owner/repo@tag/asset`. Downloads
 * `{github}/{owner}/{repo}/releases/download/{tag}/{asset}`; GitHub redirects to its asset host and
 * the runtime's transfer engine drops GITHUB_TOKEN there (it is only ever sent to GitHub's own host).
 * Options: `apiUrl` (REST API base, default api.github.com or {github}/api/v3); the node passes
 * `githubUrl` (LLMLB_GITHUB_URL) and `githubToken`.
 */
export default definePlugin(({ options }) => {
  const config = { githubUrl: stringOption(options, "githubUrl", DEFAULT_GITHUB), githubToken: stringOption(options, "githubToken") };
  return {
  name: "github-adapter",
  priority: 25,
  kinds: ["adapter"] as const,
  async locate(spec, ctx): Promise<LocateResult> {
    if (spec.kind !== "adapter") return { type: "not-here", reason: "serves adapters only", code: "NOT_HERE" };
    let ref: GithubAssetRef | undefined;
    try {
      ref = parseGithubRef(spec.ref);
    } catch (err) {
      throw new LlmlbError("INVALID_ADAPTER_REF", (err as Error).message, { ref: spec.ref });
    }
    if (!ref) return { type: "not-here", reason: "not a github: reference", code: "NOT_HERE" };
    const headers: Record<string, string> = config.githubToken ? { authorization: `Bearer ${config.githubToken}` } : {};
    const facts = await assetFacts(ref, githubApiBase(config.githubUrl, options.apiUrl), headers, ctx);
    const where = `${ref.owner}/${ref.repo}@${ref.tag}/${ref.asset}`;
    if (facts.status === 401 || facts.status === 403) {
      throw new LlmlbError("AUTH_REQUIRED", `GitHub refused ${where} (HTTP ${facts.status}): the repository is private or the token lacks access; set GITHUB_TOKEN to a token that can read it`, { ref: spec.ref });
    }
    if (facts.status === 404) {
      throw new LlmlbError("ADAPTER_NOT_FOUND", `GitHub has no release asset ${where}: check the owner, repository, tag and asset name${config.githubToken ? "" : " (or set GITHUB_TOKEN if the repository is private)"}`, { ref: spec.ref });
    }
    return {
      type: "remote",
      files: [
        {
          name: ref.asset,
          url: `${config.githubUrl}/${ref.owner}/${ref.repo}/releases/download/${encodeURIComponent(ref.tag)}/${encodeURIComponent(ref.asset)}`,
          ...(facts.size !== undefined ? { size: facts.size } : {}),
          ...(facts.sha256 ? { sha256: facts.sha256 } : {}),
          headers,
        },
      ],
      revision: ref.tag,
    };
  },
  };
});
