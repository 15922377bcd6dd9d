import { definePlugin, mapBounded, type ArtifactSpec, type LocateResult, type RemoteFile, type SourceContext } from "@llmlb/runtime/plugin";
import { expandShards, storeName } from "../huggingface/shards.js";
import { blobUrl, probe } from "../router-proxy/index.js";

/**
 * Models from the other nodes of this node's fleet (LLMLB_STATE_URL), so the hub serves each
 * model once per cluster: a peer that holds the model READY (one picked at random, spreading
 * the load), else the peer downloading it now, whose blob route streams the bytes as they are
 * verified. Files come from `GET /v0/models/blob/:id[/file]` with the cluster's key. Each file is
 * verified by the runtime against its own sha256: the catalog's when it has one, else the digest
 * the peer recorded when it installed (or is checking while it downloads) the file, offered only
 * when that digest was known before the peer's download (`llmlb-verified: true`); a file with no
 * such digest is size-checked only and the model is installed `verified: false`.
 * Not a member of a fleet: "not here".
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
    const wanted = expandShards(spec.model.files).map((file, i) => ({
      name: storeName(file),
      url: blobUrl(base, spec.id, i === 0 ? undefined : storeName(file)),
    }));
    const probes = await mapBounded(wanted, (w) => probe(ctx, w.url, headers, 1));
    const files: RemoteFile[] = [];
    for (const [i, w] of wanted.entries()) {
      const p = probes[i]!;
      if (!p.ok) return { type: "not-here", reason: `${w.url} ${p.why}`, code: p.missing ? "NOT_HERE" : "SOURCE_UNAVAILABLE" };
      files.push({
        ...w,
        ...(p.size !== undefined ? { size: p.size } : {}),
        ...(p.sha256 && p.digestVerified ? { sha256: p.sha256 } : {}),
        ...(headers.authorization ? { headers } : {}),
      });
    }
    return { type: "remote", files };
  },
});
