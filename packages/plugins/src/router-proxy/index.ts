import { definePlugin, fetchWithRetry, LlmlbError, type ArtifactSpec, type LocateResult, type RemoteFile, type SourceContext } from "@llmlb/runtime/plugin";
import { expandShards, storeName } from "../huggingface/shards.js";
import { stringListOption, stringOption } from "../options.js";


/** `{base}/v0/models/blob/{id}`; further parts of a sharded model as `{base}/v0/models/blob/{id}/{file}`. */
export function blobUrl(base: string, id: string, file?: string): string {
  return `${base.replace(/\/+$/, "")}/v0/models/blob/${encodeURIComponent(id)}${file ? `/${encodeURIComponent(file)}` : ""}`;
}

type Probe = { ok: true; size?: number; sha256?: string } | { ok: false; missing: boolean; why: string; status?: number };

async function probe(ctx: SourceContext, url: string, headers: Record<string, string>): Promise<Probe> {
  let res: Response;
  try {
    res = await fetchWithRetry(ctx.fetch, url, { method: "HEAD", headers, signal: ctx.signal }, { retries: 2 });
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    const cause = (err as { cause?: { code?: unknown } }).cause;
    return { ok: false, missing: false, why: `unreachable (${typeof cause?.code === "string" ? cause.code : (err as Error).message})` };
  }
  if (res.status === 404) return { ok: false, missing: true, why: "does not have it", status: 404 };
  if (!res.ok) return { ok: false, missing: false, why: `answered HTTP ${res.status}`, status: res.status };
  const length = res.headers.get("content-length");
  const etag = res.headers.get("etag")?.replace(/^"|"$/g, "");
  return { ok: true, ...(length !== null ? { size: Number(length) } : {}), ...(etag && /^[0-9a-f]{64}$/i.test(etag) ? { sha256: etag.toLowerCase() } : {}) };
}

/**
 * Models from upstream llmlb routers or peer nodes (LLMLB_ROUTER_URL, comma-separated):
 * `GET /v0/models/blob/:id` with ranges, `Authorization: Bearer LLMLB_ROUTER_API_KEY` when set
 * (sent only to the router's own host). The first router that has the model wins.
 * Options: `urls` (overrides LLMLB_ROUTER_URL), `apiKey`; the node passes `routerUrls` and `routerApiKey`.
 */
export default definePlugin(({ options }) => {
  const urls = stringListOption(options, "urls") ?? stringListOption(options, "routerUrls") ?? [];
  const apiKey = typeof options.apiKey === "string" ? options.apiKey : stringOption(options, "routerApiKey");
  const headers: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  return {
    name: "router-proxy",
    priority: 30,
    kinds: ["model"] as const,
    async locate(spec: ArtifactSpec, ctx: SourceContext): Promise<LocateResult> {
      if (spec.kind !== "model") return { type: "not-here", reason: "serves models only", code: "NOT_HERE" };
      if (urls.length === 0) return { type: "not-here", reason: "no upstream router is configured (LLMLB_ROUTER_URL)", code: "NOT_CONFIGURED" };
      const files = expandShards(spec.model.files);
      const problems: string[] = [];
      let unauthorized = false;
      for (const base of urls) {
        const wanted = files.map((f, i) => ({ name: storeName(f), url: blobUrl(base, spec.id, i === 0 ? undefined : storeName(f)) }));
        const probes = await Promise.all(wanted.map((w) => probe(ctx, w.url, headers)));
        const failed = probes.find((p): p is Extract<Probe, { ok: false }> => !p.ok);
        if (failed) {
          problems.push(`${base} ${failed.why}`);
          if (failed.status === 401 || failed.status === 403) unauthorized = true;
          continue;
        }
        const remote: RemoteFile[] = wanted.map((w, i) => {
          const p = probes[i] as Extract<Probe, { ok: true }>;
          return { ...w, ...(p.size !== undefined ? { size: p.size } : {}), ...(p.sha256 ? { sha256: p.sha256 } : {}), headers };
        });
        return { type: "remote", files: remote };
      }
      if (problems.every((p) => p.endsWith("does not have it"))) return { type: "not-here", reason: problems.join("; "), code: "NOT_HERE" };
      if (unauthorized) {
        throw new LlmlbError("AUTH_REQUIRED", `the router refused this node: ${problems.join("; ")}; set LLMLB_ROUTER_API_KEY`, { model_id: spec.id });
      }
      throw new LlmlbError("SOURCE_UNAVAILABLE", `no router could serve ${spec.id}: ${problems.join("; ")}`, { model_id: spec.id });
    },
  };
});
