import { definePlugin, type ArtifactSpec, type LocateResult, type SourceContext } from "@llmlb/runtime/plugin";
import { expandShards, storeName } from "../huggingface/shards.js";
import { blobUrl } from "../router-proxy/index.js";

/**
 * Models from the other nodes of this node's fleet (LLMLB_STATE_URL), so the hub serves each
 * model once per cluster: a peer that holds the model READY (one picked at random, spreading
 * the load), else the peer downloading it now, whose blob route streams the bytes as they land.
 * Files come from `GET /v0/models/blob/:id` with the cluster's key and are verified by the runtime
 * against the catalog's sha256, like bytes from the hub. Not a member of a fleet: "not here".
 */
export default definePlugin({
  name: "peer",
  priority: 15,
  kinds: ["model"] as const,
  async locate(spec: ArtifactSpec, ctx: SourceContext): Promise<LocateResult> {
    if (spec.kind !== "model") return { type: "not-here", reason: "serves models only", code: "NOT_HERE" };
    const fleet = ctx.fleet;
    if (!fleet) return { type: "not-here", reason: "this node is not part of a fleet (LLMLB_STATE_URL is not set)", code: "NOT_CONFIGURED" };
    const holders = await fleet.holders(spec.id);
    const base = holders.length > 0 ? holders[Math.floor(Math.random() * holders.length)] : await fleet.downloader(spec.id);
    if (!base) return { type: "not-here", reason: "no other node of the fleet holds or is downloading it", code: "NOT_HERE" };
    const headers = fleet.headers();
    const files = expandShards(spec.model.files).map((file, i) => ({
      name: storeName(file),
      url: blobUrl(base, spec.id, i === 0 ? undefined : storeName(file)),
      ...(headers.authorization ? { headers } : {}),
    }));
    const [first, ...rest] = files;
    return { type: "remote", files: [{ ...first!, ...(spec.model.sha256 ? { sha256: spec.model.sha256 } : {}) }, ...rest] };
  },
});
