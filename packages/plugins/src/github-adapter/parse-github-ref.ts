/** A GitHub release asset reference: `github:owner/repo@tag/asset`. */
export interface GithubAssetRef {
  owner: string;
  repo: string;
  tag: string;
  asset: string;
}

const NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * Parses `github:owner/repo@tag/asset` (the tag may itself contain "/", e.g. `release/v1`; the asset
 * is the last segment). Returns undefined for references of other forms; throws on a malformed one.
 */
export function parseGithubRef(ref: string): GithubAssetRef | undefined {
  if (!ref.startsWith("github:")) return undefined;
  const body = ref.slice("github:".length);
  const at = body.indexOf("@");
  const slash = body.lastIndexOf("/");
  const [owner, repo, ...rest] = at > 0 ? body.slice(0, at).split("/") : [];
  const tag = at > 0 && slash > at ? body.slice(at + 1, slash) : "";
  const asset = slash > at ? body.slice(slash + 1) : "";
  if (!owner || !repo || rest.length > 0 || !tag || !asset || !NAME.test(owner) || !NAME.test(repo) || !NAME.test(asset) || asset.startsWith(".") || tag.includes("..")) {
    throw new Error(`"${ref}" is not a GitHub release asset reference; expected github:owner/repo@tag/asset.gguf`);
  }
  return { owner, repo, tag, asset };
}
