import { definePlugin, mapBounded, parseAdapterRef, type ArtifactSpec, type LocateResult, type RemoteFile, type SourceContext } from "@llmlb/runtime/plugin";
import { headFile, resolveUrl } from "./hf-file-info.js";
import { hfToken } from "./hf-token.js";
import { stringOption } from "../options.js";
import { expandShards, storeName } from "./shards.js";

export { expandShards } from "./shards.js";
export { resolveUrl } from "./hf-file-info.js";

const COMMIT = /^[0-9a-f]{40}$/;

interface Wanted {
  repo: string;
  revision: string;
  files: string[];
}

function wanted(spec: ArtifactSpec): Wanted | undefined {
  if (spec.kind === "model") {
    return { repo: spec.model.repo, revision: spec.pinnedRevision ?? spec.model.revision ?? "main", files: expandShards(spec.model.files) };
  }
  if (!spec.ref.startsWith("hf:")) return undefined;
  const ref = parseAdapterRef(spec.ref);
  return ref.scheme === "hf" ? { repo: ref.repo, revision: ref.revision ?? "main", files: [ref.path] } : undefined;
}

/** The public hub, when the node passes no hubEndpoint. */
const DEFAULT_HUB = "https://huggingface.co";

/**
 * Models (and hf: adapters) from the Hugging Face Hub, or a mirror named by HF_ENDPOINT /
 * MODEL_ENDPOINT. Locates by HEAD requests: the first file fixes the commit, every other file
 * (all parts of a sharded GGUF) is taken from that same commit, and the download URLs name the
 * commit, so a repository that moves on mid-way changes nothing. HF_TOKEN goes only to the hub's
 * host (the transfer engine drops it on the redirect to the CDN).
 * Options: `endpoint` (overrides HF_ENDPOINT), `tokenFile`; the node passes `hubEndpoint` and `hubToken`.
 */
export default definePlugin(({ options }) => {
  const endpoint = stringOption(options, "endpoint", stringOption(options, "hubEndpoint", DEFAULT_HUB)).replace(/\/+$/, "");
  const token = hfToken(stringOption(options, "hubToken"), options.tokenFile);
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  return {
    name: "huggingface",
    priority: 20,
    kinds: ["model", "adapter"] as const,
    async locate(spec: ArtifactSpec, ctx: SourceContext): Promise<LocateResult> {
      const want = wanted(spec);
      if (!want) return { type: "not-here", reason: "not an hf: reference", code: "NOT_HERE" };
      if (!want.repo || want.files.length === 0) {
        return { type: "not-here", reason: "the catalog entry names no Hugging Face repository and file", code: "NOT_HERE" };
      }
      const target = (file: string, revision: string) => ({ endpoint, repo: want.repo, revision, file, hasToken: token !== "" });
      const [first, ...rest] = want.files;
      const head = await headFile(ctx, target(first!, want.revision), headers);
      const commit = head.commit && COMMIT.test(head.commit) ? head.commit : want.revision;
      const others = await mapBounded(rest, (f) => headFile(ctx, target(f, commit), headers));
      const files: RemoteFile[] = [head, ...others].map((info, i) => ({
        name: storeName(want.files[i]!),
        url: resolveUrl(endpoint, want.repo, commit, want.files[i]!),
        ...(info.size !== undefined ? { size: info.size } : {}),
        ...(info.sha256 ? { sha256: info.sha256 } : {}),
        headers,
      }));
      ctx.logger.debug({ repo: want.repo, commit, files: files.length }, "located on Hugging Face");
      return { type: "remote", files, ...(COMMIT.test(commit) ? { revision: commit } : {}) };
    },
  };
});
