import path from "node:path";
import { definePlugin, fetchWithRetry, LlmlbError, mapBounded, routerModelName, type ArtifactSpec, type LocateResult, type RemoteFile, type SourceContext } from "@llmlb/runtime/plugin";
import { expandShards, storeName } from "../huggingface/shards.js";
import { stringListOption, stringOption } from "../options.js";

/** Where a router serves models: `/v0/models` (llmlb ≤ 2.x and peer nodes), `/api/models` (newer routers, key needed). */
const PREFIXES = ["/v0/models", "/api/models"] as const;
type Prefix = (typeof PREFIXES)[number];

/** `{base}/v0/models/blob/{id}`; further parts of a sharded model as `{base}/v0/models/blob/{id}/{file}`. */
export function blobUrl(base: string, id: string, file?: string, prefix: Prefix = "/v0/models"): string {
  return `${base.replace(/\/+$/, "")}${prefix}/blob/${encodeURIComponent(id)}${file ? `/${encodeURIComponent(file)}` : ""}`;
}

/** `{base}/v0/models/registry/{id}/manifest.json` (or under /api/models). */
export function manifestUrl(base: string, id: string, prefix: Prefix = "/v0/models"): string {
  return `${base.replace(/\/+$/, "")}${prefix}/registry/${encodeURIComponent(id)}/manifest.json`;
}

export type Probe =
  | {
      ok: true;
      size?: number;
      sha256?: string;
      /**
       * The sha256 may be trusted as the file's: false only when the server (an llmlb node) says
       * its copy was not verified against a digest known before its download (`llmlb-verified: false`).
       */
      digestVerified: boolean;
    }
  | { ok: false; missing: boolean; why: string; status?: number };

function unreachable(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return `unreachable (${typeof cause?.code === "string" ? cause.code : (err as Error).message})`;
}

/** HEAD of a blob URL (a router's or a peer node's): size, sha256 (strong ETag) and whether that digest was verified. */
export async function probe(ctx: SourceContext, url: string, headers: Record<string, string>, retries = 2): Promise<Probe> {
  let res: Response;
  try {
    res = await fetchWithRetry(ctx.fetch, url, { method: "HEAD", headers, signal: ctx.signal }, { retries });
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    return { ok: false, missing: false, why: unreachable(err) };
  }
  if (res.status === 404) return { ok: false, missing: true, why: "does not have it", status: 404 };
  if (!res.ok) return { ok: false, missing: false, why: `answered HTTP ${res.status}`, status: res.status };
  const length = res.headers.get("content-length");
  const etag = res.headers.get("etag")?.replace(/^"|"$/g, "");
  return {
    ok: true,
    ...(length !== null ? { size: Number(length) } : {}),
    ...(etag && /^[0-9a-f]{64}$/i.test(etag) ? { sha256: etag.toLowerCase() } : {}),
    digestVerified: res.headers.get("llmlb-verified") !== "false",
  };
}

interface ManifestFile {
  name: string;
  url?: string;
  runtimes?: string[];
}

type ManifestRead = { found: true; prefix: Prefix; files: ManifestFile[] } | { found: false; problem?: string; status?: number };

/** The router's registry manifest of a model, from the first prefix that has one. */
async function readManifest(ctx: SourceContext, base: string, id: string, headers: Record<string, string>): Promise<ManifestRead> {
  let last: ManifestRead = { found: false };
  for (const prefix of PREFIXES) {
    let res: Response;
    try {
      res = await fetchWithRetry(ctx.fetch, manifestUrl(base, id, prefix), { headers: { ...headers, accept: "application/json" }, signal: ctx.signal }, { retries: 1 });
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      return { found: false, problem: unreachable(err) };
    }
    if (!res.ok) {
      await res.body?.cancel();
      if (res.status !== 404) last = { found: false, problem: `manifest answered HTTP ${res.status}`, status: res.status };
      continue;
    }
    const body = (await res.json().catch(() => undefined)) as { files?: unknown } | undefined;
    const files = Array.isArray(body?.files)
      ? body.files.filter((f: unknown): f is ManifestFile => typeof (f as ManifestFile | null)?.name === "string")
      : [];
    return { found: true, prefix, files };
  }
  return last;
}

type ModelSpec = Extract<ArtifactSpec, { kind: "model" }>;

/** Why a router could not serve the model; `missing` when it simply does not have it. */
interface Failure {
  missing: boolean;
  why: string;
}

/**
 * What a router may call this model: its catalog id (peer nodes, routers that list our ids), then
 * an llmlb router's own name for a one-file model (routerModelName of its Hugging Face repo),
 * checked against the catalog's file before use.
 */
function routerNames(spec: ModelSpec): string[] {
  const byRepo = routerModelName(spec.model.repo);
  return byRepo && byRepo !== spec.id && spec.model.files.length === 1 ? [spec.id, byRepo] : [spec.id];
}

/**
 * Models from upstream llmlb routers or peer nodes (LLMLB_ROUTER_URL, comma-separated), with
 * `Authorization: Bearer LLMLB_ROUTER_API_KEY` when set (sent only to the router's own host).
 * For each router in turn: its registry manifest (files for llama_cpp; each file from the
 * manifest's URL when this node reaches it, else through the router's blob route), else the blob
 * route itself (`/v0/models/blob/:id`, or `/api/models/blob/:id` on newer routers). A router's
 * blob route has no Range: the runtime then restarts a dropped transfer from zero.
 * Options: `urls` (overrides LLMLB_ROUTER_URL), `apiKey`; the node passes `routerUrls` and `routerApiKey`.
 */
export default definePlugin(({ options }) => {
  const urls = stringListOption(options, "urls") ?? stringListOption(options, "routerUrls") ?? [];
  const apiKey = typeof options.apiKey === "string" ? options.apiKey : stringOption(options, "routerApiKey");
  const headers: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};

  async function fromManifest(ctx: SourceContext, base: string, spec: ModelSpec, routerName: string, read: Extract<ManifestRead, { found: true }>): Promise<RemoteFile[] | Failure> {
    const usable = read.files.filter((f) => f.runtimes === undefined || f.runtimes.includes("llama_cpp"));
    if (usable.length === 0) return { missing: false, why: "its manifest lists no file for llama_cpp" };
    if (routerName !== spec.id) {
      // Named by its repo, the router's model may be another file of it: only the catalog's file will do.
      const other = usable.find((f) => !f.url || path.posix.basename(new URL(f.url, base).pathname) !== spec.model.files[0]);
      if (other) return { missing: true, why: `has ${routerName} with another file (${other.url ?? other.name}), not ${spec.model.files[0]}` };
    }
    const catalogNames = expandShards(spec.model.files).map(storeName);
    const files: RemoteFile[] = [];
    for (const [i, f] of usable.entries()) {
      const name = catalogNames.length === usable.length ? catalogNames[i]! : storeName(f.name);
      const direct = f.url && /^https?:\/\//.test(f.url) ? await probe(ctx, f.url, {}, 0) : undefined;
      if (direct?.ok) {
        files.push({ name, url: f.url!, ...(direct.size !== undefined ? { size: direct.size } : {}) });
        continue;
      }
      if (direct) ctx.logger.info({ url: f.url, why: direct.why }, "the manifest's URL is not reachable from this node; fetching through the router");
      const url = blobUrl(base, routerName, i === 0 ? undefined : f.name, read.prefix);
      const viaRouter = await probe(ctx, url, headers);
      if (!viaRouter.ok) return { missing: viaRouter.missing, why: `${url} ${viaRouter.why}` };
      files.push({ name, url, ...(viaRouter.size !== undefined ? { size: viaRouter.size } : {}), ...(viaRouter.sha256 && viaRouter.digestVerified ? { sha256: viaRouter.sha256 } : {}), headers });
    }
    return files;
  }

  async function fromBlobRoute(ctx: SourceContext, base: string, spec: ModelSpec, name: string): Promise<RemoteFile[] | Extract<Probe, { ok: false }>> {
    const files = expandShards(spec.model.files);
    let failed: Extract<Probe, { ok: false }> | undefined;
    for (const prefix of PREFIXES) {
      const wanted = files.map((f, i) => ({ name: storeName(f), url: blobUrl(base, name, i === 0 ? undefined : storeName(f), prefix) }));
      const probes = await mapBounded(wanted, (w) => probe(ctx, w.url, headers));
      failed = probes.find((p): p is Extract<Probe, { ok: false }> => !p.ok);
      const size = probes[0]?.ok ? probes[0].size : undefined;
      if (!failed && name !== spec.id && size !== undefined && spec.model.sizeBytes !== undefined && size !== spec.model.sizeBytes) {
        // Named by its repo, the router serves another file of it (the size tells).
        return { ok: false, missing: true, why: `has ${name} with another file (${size} bytes, not the ${spec.model.sizeBytes} of ${spec.model.files[0]})` };
      }
      if (!failed) {
        return wanted.map((w, i) => {
          const p = probes[i] as Extract<Probe, { ok: true }>;
          return { ...w, ...(p.size !== undefined ? { size: p.size } : {}), ...(p.sha256 && p.digestVerified ? { sha256: p.sha256 } : {}), headers };
        });
      }
      if (!failed.missing) break;
    }
    return failed!;
  }

  return {
    name: "router-proxy",
    priority: 30,
    kinds: ["model"] as const,
    async locate(spec: ArtifactSpec, ctx: SourceContext): Promise<LocateResult> {
      if (spec.kind !== "model") return { type: "not-here", reason: "serves models only", code: "NOT_HERE" };
      if (urls.length === 0) return { type: "not-here", reason: "no upstream router is configured (LLMLB_ROUTER_URL)", code: "NOT_CONFIGURED" };
      // Each router's answer, and whether it only lacks the model (then the chain goes on to the next source).
      const problems: Array<{ text: string; missing: boolean }> = [];
      // Asked under two names, a router that has neither says so once.
      const note = (text: string, missing: boolean) => {
        if (!problems.some((p) => p.text === text)) problems.push({ text, missing });
      };
      let unauthorized = false;
      for (const base of urls) {
        for (const name of routerNames(spec)) {
          const manifest = await readManifest(ctx, base, name, headers);
          if (manifest.found) {
            const files = await fromManifest(ctx, base, spec, name, manifest);
            if (Array.isArray(files)) return { type: "remote", files };
            note(`${base} ${files.why}`, files.missing);
            continue;
          }
          if (manifest.status === 401 || manifest.status === 403) unauthorized = true;
          const files = await fromBlobRoute(ctx, base, spec, name);
          if (Array.isArray(files)) return { type: "remote", files };
          note(`${base} ${files.why}`, files.missing);
          if (files.status === 401 || files.status === 403) unauthorized = true;
          if (!files.missing) break;
        }
      }
      const reason = problems.map((p) => p.text).join("; ");
      if (problems.every((p) => p.missing)) return { type: "not-here", reason, code: "NOT_HERE" };
      if (unauthorized) {
        const fix = apiKey ? "the key in LLMLB_ROUTER_API_KEY was refused: check it against the router's API keys" : "set LLMLB_ROUTER_API_KEY";
        throw new LlmlbError("AUTH_REQUIRED", `the router refused this node: ${reason}; ${fix}`, { model_id: spec.id });
      }
      throw new LlmlbError("SOURCE_UNAVAILABLE", `no router could serve ${spec.id}: ${reason}`, { model_id: spec.id });
    },
  };
});
