import { definePlugin, mapBounded, type ArtifactSpec, type LocateResult, type RemoteFile, type SourceContext } from "@llmlb/runtime/plugin";
import { expandShards, storeName } from "../huggingface/shards.js";
import { blobUrl, probe, type Probe } from "../router-proxy/index.js";

/** Peers a file is fetched from at once, at most. */
const MAX_PEERS = 4;

type Answer = Extract<Probe, { ok: true }>;
type Asked = { base: string; answers: Answer[] } | { base: string; problem: Extract<Probe, { ok: false }> };

/**
 * Models from the other nodes of this node's fleet (LLMLB_STATE_URL), so the hub serves each
 * model once per cluster: the peers that hold the model READY (up to MAX_PEERS of them, in random
 * order, the first as the file's URL and the others as its mirrors: the transfer engine splits the
 * ranges across them), else the peer downloading it now, whose blob route streams the bytes as
 * they are verified. Files come from `GET /v0/models/blob/:id[/file]` with the cluster's key.
 * Each file is verified by the runtime against its own sha256: the catalog's when it has one,
 * else the digest the peer recorded when it installed (or is checking while it downloads) the
 * file, used only when that digest was known before the peer's own download (its blob route says
 * `llmlb-verified: true`; `false` leaves the file without a digest); a file with no such digest is
 * size-checked only and the model is installed `verified: false`. Not a member of a fleet: "not here".
 */
/** Peers whose refusal of this node's key was logged, per node (its fleet view). */
const refusalsWarned = new WeakMap<object, Set<string>>();

export default definePlugin({
  name: "peer",
  priority: 15,
  kinds: ["model"] as const,
  async locate(spec: ArtifactSpec, ctx: SourceContext): Promise<LocateResult> {
    if (spec.kind !== "model") return { type: "not-here", reason: "serves models only", code: "NOT_HERE" };
    const fleet = ctx.fleet;
    if (!fleet) return { type: "not-here", reason: "this node is not part of a fleet (LLMLB_STATE_URL is not set)", code: "NOT_CONFIGURED" };
    const holders = shuffle(await fleet.holders(spec.id)).slice(0, MAX_PEERS);
    const downloader = holders.length === 0 ? await fleet.downloader(spec.id) : undefined;
    const candidates = holders.length > 0 ? holders : downloader ? [downloader] : [];
    if (candidates.length === 0) return { type: "not-here", reason: "no other node of the fleet holds or is downloading it", code: "NOT_HERE" };
    const headers = fleet.headers();
    const names = expandShards(spec.model.files).map(storeName);
    const urls = (base: string) => names.map((name, i) => blobUrl(base, spec.id, i === 0 ? undefined : name));

    const asked = await mapBounded(candidates, async (base): Promise<Asked> => {
      const answers = await mapBounded(urls(base), (url) => probe(ctx, url, headers, 1));
      const failed = answers.find((p): p is Extract<Probe, { ok: false }> => !p.ok);
      return failed ? { base, problem: failed } : { base, answers: answers as Answer[] };
    });
    // A peer whose copy was verified first: its digests are the ones the files are checked against.
    const verified = (a: { answers: Answer[] }) => a.answers.every((x) => x.sha256 !== undefined && x.digestVerified);
    const serving = asked
      .filter((a): a is { base: string; answers: Answer[] } => "answers" in a)
      .sort((a, b) => Number(verified(b)) - Number(verified(a)));
    const [primary, ...others] = serving;
    // A peer refusing this node's key means the fleet's keys differ: every download then goes to the
    // hub without a word, so it is said (once per peer) where operators look.
    for (const a of asked) {
      const warned = refusalsWarned.get(fleet) ?? refusalsWarned.set(fleet, new Set()).get(fleet)!;
      if ("problem" in a && (a.problem.status === 401 || a.problem.status === 403) && !warned.has(a.base)) {
        warned.add(a.base);
        ctx.logger.warn(
          { peer: a.base, status: a.problem.status },
          "a node of the fleet refused this node's key: the nodes of a fleet must share LLMLB_API_KEY (or a key of LLMLB_API_KEYS_FILE with the read scope); models it holds are fetched from elsewhere",
        );
      }
    }
    if (!primary) {
      const problems = asked.flatMap((a) => ("problem" in a ? [`${a.base} ${a.problem.why}`] : [])).join("; ");
      const missing = asked.every((a) => "problem" in a && a.problem.missing);
      return { type: "not-here", reason: problems, code: missing ? "NOT_HERE" : "SOURCE_UNAVAILABLE" };
    }
    // Only peers offering the very same files (sizes and digests) share the ranges.
    const mirrors = others.filter((o) => o.answers.every((a, i) => a.size === primary.answers[i]!.size && a.sha256 === primary.answers[i]!.sha256));
    const withKey = headers.authorization ? { headers } : {};
    const files: RemoteFile[] = names.map((name, i) => {
      const p = primary.answers[i]!;
      return {
        name,
        url: urls(primary.base)[i]!,
        ...(p.size !== undefined ? { size: p.size } : {}),
        ...(p.sha256 && p.digestVerified ? { sha256: p.sha256 } : {}),
        ...withKey,
        ...(mirrors.length > 0 ? { mirrors: mirrors.map((m) => ({ url: urls(m.base)[i]!, ...withKey })) } : {}),
      };
    });
    return { type: "remote", files };
  },
});

function shuffle<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
