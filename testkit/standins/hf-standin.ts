/**
 * Hugging Face Hub stand-in: a hub listener (resolve, /api/models, tree, refs, whoami) and a CDN
 * listener on another port serving LFS files from signed URLs. Behaviour follows
 * /work/shared/reference/hf-http.md; see README.md for the API and fault semantics.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type FileBody, type DiskFile, isDiskFile, sendBlob, toBlob } from "./body.js";
import { type FaultControls, type FaultScope, faultControls, Faults } from "./faults.js";
import { type DownMode, Listener } from "./listener.js";
import { RequestLog, type RequestLogEntry } from "./request-log.js";
import { bearerToken, decodeSegments, encodePath, headerSafe, send, sendJson, statusText } from "./respond.js";

export type HfHost = "hub" | "cdn";
export type Gated = false | "auto" | "manual";

/** A file of a repo: bytes, or a disk file (streamed), optionally forcing LFS on/off. */
export type HfFileInput = Uint8Array | (DiskFile & { lfs?: boolean }) | { data: Uint8Array; lfs?: boolean };

export interface GgufInfo {
  total: number;
  architecture: string;
  context_length: number;
  chat_template: string;
  bos_token: string;
  eos_token: string;
}

export interface HfRepoOptions {
  files: Record<string, HfFileInput>;
  gated?: Gated;
  private?: boolean;
  disabled?: boolean;
  /** Commit shas (40 hex) of the history, oldest first; all resolve to `files`; the last is `main`. Default: one generated sha. */
  commits?: string[];
  downloads?: number;
  likes?: number;
  tags?: string[];
  pipeline_tag?: string;
  library_name?: string;
  /** Overrides for the `gguf` block of the model info (only emitted for repos with .gguf files). */
  gguf?: Partial<GgufInfo>;
  /** Date of the commits created by addRepo (default now). */
  date?: Date;
}

export type HfRepoPatch = Partial<Pick<HfRepoOptions, "gated" | "private" | "disabled" | "downloads" | "likes" | "tags" | "pipeline_tag" | "library_name" | "gguf">>;

export interface HfStandinOptions {
  /** Tokens the hub accepts. Undefined: any bearer token is a valid (unprivileged) user. A token not in the set → 401. */
  validTokens?: Iterable<string>;
  /** Files at least this large are LFS even without a .gguf name (default 10 MiB). */
  lfsThreshold?: number;
  /** Tree page size (default 50); a request may lower/raise it with ?limit=. */
  treePageSize?: number;
  /** Lifetime of signed CDN URLs (default 3600 s). */
  cdnUrlTtlSeconds?: number;
  /** RateLimit-Policy header value sent with 429s. */
  rateLimitPolicy?: string;
}

export interface HfDownOptions {
  mode?: DownMode;
  /** Which listener(s) go down (default "both"). */
  host?: HfHost | "both";
}

export interface HfStandin extends FaultControls {
  /** The hub listener; use `hub.url` as HF_ENDPOINT. */
  readonly hub: { readonly url: string; readonly port: number };
  /** Same as hub.url. */
  readonly url: string;
  /** The CDN listener (another port). */
  readonly cdnUrl: string;
  /** Live request log (both listeners). */
  readonly requests: RequestLogEntry<HfHost>[];
  clearLog(): void;
  /** Body bytes of this file's content sent so far (CDN for LFS files, hub for small files). */
  bytesServed(repoId: string, path: string): number;

  /** Registers (or replaces) a repo. Resolves once disk files are hashed. Returns the head commit. */
  addRepo(repoId: string, opts: HfRepoOptions): Promise<{ id: string; commit: string }>;
  /** New commit on `branch` (default main) = its head's files with these changes (null deletes). Older commits stay resolvable. */
  pushCommit(repoId: string, files: Record<string, HfFileInput | null>, opts?: { branch?: string; sha?: string; date?: Date }): Promise<string>;
  /** Creates/moves a ref: a branch or tag name ("v1.0") or a PR ref ("refs/pr/1"). */
  setRef(repoId: string, ref: string, commit: string, kind?: "branch" | "tag"): void;
  /** Commit a revision resolves to (default "main"); undefined if unknown. */
  commitOf(repoId: string, revision?: string): string | undefined;
  updateRepo(repoId: string, patch: HfRepoPatch): void;
  removeRepo(repoId: string): void;
  /** Grant a token access to a gated or private repo. */
  approve(repoId: string, token: string): void;
  revoke(repoId: string, token: string): void;
  addToken(token: string): void;
  /** Sha256 / size / LFS-ness of a file at a revision. */
  fileInfo(repoId: string, path: string, revision?: string): { sha256: string; size: number; lfs: boolean; oid: string } | undefined;
  /** Invalidates every CDN URL issued so far (they answer 403 as if expired). */
  expireCdnUrls(): void;

  down(opts?: HfDownOptions): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

interface RepoFile {
  path: string;
  blob: FileBody;
  lfs: boolean;
  /** git blob oid: of the content (small files) or of the LFS pointer. */
  oid: string;
  pointerSize?: number;
}

interface Commit {
  sha: string;
  date: Date;
  files: Map<string, RepoFile>;
}

interface Repo {
  id: string;
  gated: Gated;
  private: boolean;
  disabled: boolean;
  downloads: number;
  likes: number;
  tags?: string[];
  pipeline_tag?: string;
  library_name?: string;
  gguf?: Partial<GgufInfo>;
  createdAt: Date;
  commits: Map<string, Commit>;
  /** branch name → sha */
  branches: Map<string, string>;
  /** tag name → sha */
  tagRefs: Map<string, string>;
  /** "refs/pr/N" → sha */
  prs: Map<string, string>;
  approved: Set<string>;
}

interface CdnObject {
  repoId: string;
  path: string;
  blob: FileBody;
  lastModified: Date;
}

const MiB = 1 << 20;
const DEFAULT_CHATML =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

function lfsPointer(sha256: string, size: number): string {
  return `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`;
}

function isSha(s: string): boolean {
  return /^[0-9a-f]{40}$/.test(s);
}

function contentTypeOf(path: string): string {
  return /\.(json|md|txt|jinja|yaml|yml|py|gitattributes)$/i.test(path) || path.endsWith(".gitattributes")
    ? "text/plain; charset=utf-8"
    : "application/octet-stream";
}

export async function startHfStandin(options: HfStandinOptions = {}): Promise<HfStandin> {
  const log = new RequestLog<HfHost>();
  const faults = new Faults();
  const repos = new Map<string, Repo>();
  const cdnObjects = new Map<string, CdnObject>();
  const validTokens = options.validTokens ? new Set(options.validTokens) : undefined;
  const lfsThreshold = options.lfsThreshold ?? 10 * MiB;
  const pageSize = options.treePageSize ?? 50;
  const ttl = options.cdnUrlTtlSeconds ?? 3600;
  const rateLimitPolicy = options.rateLimitPolicy ?? '"fixed window";"api";q=1000;w=300';
  let secret = randomBytes(32);
  let commitCounter = 0;

  const hub = new Listener<HfHost>("hub", log, (req, res, entry) => handleHub(req, res, entry));
  const cdn = new Listener<HfHost>("cdn", log, (req, res, entry) => handleCdn(req, res, entry));
  await hub.listen();
  await cdn.listen();

  // ---------- content registration ----------

  async function toRepoFile(path: string, input: HfFileInput): Promise<RepoFile> {
    let blob: FileBody;
    let lfsFlag: boolean | undefined;
    if (input instanceof Uint8Array) blob = await toBlob(input);
    else if (isDiskFile(input)) {
      lfsFlag = input.lfs;
      // Need all hashes only if the file may be a small git file (its ETag is the git sha1).
      const { size } = await stat(input.path);
      const mayBeGit = lfsFlag === false || (lfsFlag === undefined && !path.endsWith(".gguf") && size < lfsThreshold);
      blob = await toBlob({ path: input.path, ...(input.sha256 ? { sha256: input.sha256 } : {}) }, mayBeGit);
    } else {
      lfsFlag = input.lfs;
      blob = await toBlob(input.data);
    }
    const lfs = lfsFlag ?? (path.toLowerCase().endsWith(".gguf") || blob.size >= lfsThreshold);
    if (!lfs) return { path, blob, lfs, oid: blob.gitSha1! };
    const pointer = Buffer.from(lfsPointer(blob.sha256, blob.size));
    const oid = createHash("sha1").update(`blob ${pointer.byteLength}\0`).update(pointer).digest("hex");
    return { path, blob, lfs, oid, pointerSize: pointer.byteLength };
  }

  function newSha(repoId: string, files: Map<string, RepoFile>): string {
    const h = createHash("sha1").update(`${repoId}\n${++commitCounter}\n${Date.now()}\n`);
    for (const [p, f] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) h.update(`${p}\0${f.oid}\n`);
    return h.digest("hex");
  }

  function getRepo(repoId: string): Repo {
    const r = repos.get(repoId);
    if (!r) throw new Error(`hf-standin: unknown repo ${repoId}`);
    return r;
  }

  function resolveRevision(repo: Repo, rev: string): Commit | undefined {
    let sha = repo.branches.get(rev) ?? repo.tagRefs.get(rev) ?? repo.prs.get(rev);
    if (!sha && rev.startsWith("refs/heads/")) sha = repo.branches.get(rev.slice(11));
    if (!sha && rev.startsWith("refs/tags/")) sha = repo.tagRefs.get(rev.slice(10));
    if (!sha && isSha(rev) && repo.commits.has(rev)) sha = rev;
    return sha ? repo.commits.get(sha) : undefined;
  }

  // ---------- auth ----------

  type Failure = { status: number; message: string; code?: string };

  function tokenOf(req: IncomingMessage): { token?: string; invalid: boolean } {
    const t = bearerToken(req);
    if (t === undefined) return { invalid: false };
    if (t === "" || (validTokens && !validTokens.has(t))) return { invalid: true };
    return { token: t, invalid: false };
  }

  /** Access check. `files`: content access (gating applies); metadata (api/tree) of gated repos is public, as on the real hub. */
  function access(req: IncomingMessage, repoId: string, files: boolean): { repo?: Repo; fail?: Failure } {
    const { token, invalid } = tokenOf(req);
    if (invalid) return { fail: { status: 401, message: "Invalid credentials in Authorization header" } };
    const repo = repos.get(repoId);
    if (!repo || (repo.private && !(token && repo.approved.has(token)))) {
      return { fail: { status: token ? 404 : 401, code: "RepoNotFound", message: "Repository not found" } };
    }
    if (repo.disabled) return { fail: { status: 403, message: "Access to this resource is disabled." } };
    if (files && repo.gated && !repo.private) {
      if (!token) {
        return {
          fail: {
            status: 401,
            code: "GatedRepo",
            message: `Access to model ${repoId} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
          },
        };
      }
      if (!repo.approved.has(token)) {
        return {
          fail: {
            status: 403,
            code: "GatedRepo",
            message: `Access to model ${repoId} is restricted and you are not in the authorized list. Visit https://huggingface.co/${repoId} to ask for access.`,
          },
        };
      }
    }
    return { repo };
  }

  function hfError(req: IncomingMessage, res: ServerResponse, f: Failure, headers: Record<string, string> = {}): void {
    sendJson(req, res, f.status, { error: f.message }, {
      "X-Error-Message": headerSafe(f.message),
      ...(f.code ? { "X-Error-Code": f.code } : {}),
      ...headers,
    });
  }

  function injected(req: IncomingMessage, res: ServerResponse, host: HfHost, repoId?: string, path?: string): boolean {
    const f = faults.takeRequestFault({ host, repoId, path });
    if (!f) return false;
    if (f.kind === "rateLimit") {
      const t = f.resetSeconds;
      hfError(req, res, { status: 429, message: "You have exceeded our rate limit. Please retry later (stand-in)." }, {
        RateLimit: `"api";r=0;t=${t}`,
        "RateLimit-Policy": rateLimitPolicy,
        "Retry-After": String(t),
      });
    } else {
      hfError(req, res, { status: f.status, message: statusText(f.status) });
    }
    return true;
  }

  /** Splits "org/name/rest…" or "name/rest…" using the registry to disambiguate one-segment ids. */
  function splitRepo(segs: string[], restHint: (rest: string[]) => boolean): { repoId: string; rest: string[] } | undefined {
    if (segs.length === 0) return undefined;
    if (segs.length >= 2 && repos.has(`${segs[0]}/${segs[1]}`)) return { repoId: `${segs[0]}/${segs[1]}`, rest: segs.slice(2) };
    if (repos.has(segs[0]!)) return { repoId: segs[0]!, rest: segs.slice(1) };
    if (segs.length >= 2 && !restHint(segs.slice(1))) return { repoId: `${segs[0]}/${segs[1]}`, rest: segs.slice(2) };
    return { repoId: segs[0]!, rest: segs.slice(1) };
  }

  // ---------- hub ----------

  async function handleHub(req: IncomingMessage, res: ServerResponse, entry: RequestLogEntry<HfHost>): Promise<void> {
    const url = new URL(req.url ?? "/", hub.url);
    let segs: string[];
    try {
      segs = decodeSegments(url.pathname);
    } catch {
      hfError(req, res, { status: 400, message: "Bad request: malformed URL" });
      return;
    }
    const method = req.method ?? "GET";

    if (segs[0] === "api" && segs[1] === "whoami-v2") {
      if (injected(req, res, "hub")) return;
      const { token, invalid } = tokenOf(req);
      if (!token || invalid) return hfError(req, res, { status: 401, message: "Invalid credentials in Authorization header" });
      sendJson(req, res, 200, { type: "user", name: "standin-user", auth: { accessToken: { displayName: "standin", role: "read" } } });
      return;
    }

    if (segs[0] === "api" && segs[1] === "models") {
      const split = splitRepo(segs.slice(2), (rest) => rest.length === 0 || ["tree", "revision", "refs"].includes(rest[0]!));
      if (!split) return hfError(req, res, { status: 404, message: "Not Found" });
      entry.repoId = split.repoId;
      if (injected(req, res, "hub", split.repoId)) return;
      if (method !== "GET" && method !== "HEAD") return hfError(req, res, { status: 405, message: "Method Not Allowed" });
      const { repo, fail } = access(req, split.repoId, false);
      if (fail || !repo) return hfError(req, res, fail!);
      const rest = split.rest;
      if (rest.length === 0) return modelInfo(req, res, repo, "main", url);
      if (rest[0] === "revision" && rest.length === 2) return modelInfo(req, res, repo, rest[1]!, url);
      if (rest[0] === "refs" && rest.length === 1) return refs(req, res, repo, url);
      if (rest[0] === "tree" && rest.length >= 2) return tree(req, res, repo, rest[1]!, rest.slice(2).join("/"), url);
      return hfError(req, res, { status: 404, message: "Not Found" });
    }

    const split = splitRepo(segs, (rest) => rest[0] === "resolve");
    if (split && split.rest[0] === "resolve" && split.rest.length >= 3) {
      const rev = split.rest[1]!;
      const path = split.rest.slice(2).join("/");
      entry.repoId = split.repoId;
      entry.file = path;
      if (injected(req, res, "hub", split.repoId, path)) return;
      if (method !== "GET" && method !== "HEAD") return hfError(req, res, { status: 405, message: "Method Not Allowed" });
      return resolveFile(req, res, split.repoId, rev, path);
    }
    if (injected(req, res, "hub")) return;
    hfError(req, res, { status: 404, message: "Not Found" });
  }

  function signCdn(id: string, expires: number, key = secret): string {
    return createHmac("sha256", key).update(`${id}:${expires}`).digest("hex");
  }

  function cdnLocation(repoId: string, f: RepoFile, date: Date): string {
    const id = createHash("sha256").update(`${repoId}\0${f.path}\0${f.blob.sha256}`).digest("hex").slice(0, 40);
    if (!cdnObjects.has(id)) cdnObjects.set(id, { repoId, path: f.path, blob: f.blob, lastModified: date });
    const expires = Math.floor(Date.now() / 1000) + ttl;
    const name = f.path.split("/").pop()!;
    const disp = encodeURIComponent(`attachment; filename*=UTF-8''${encodeURIComponent(name)}; filename="${name.replace(/"/g, "")}";`);
    return `${cdn.url}/${id}?response-content-disposition=${disp}&expires=${expires}&X-Amz-Signature=${signCdn(id, expires)}`;
  }

  async function resolveFile(req: IncomingMessage, res: ServerResponse, repoId: string, rev: string, path: string): Promise<void> {
    const { repo, fail } = access(req, repoId, true);
    if (fail || !repo) return hfError(req, res, fail!);
    const commit = resolveRevision(repo, rev);
    if (!commit) return hfError(req, res, { status: 404, code: "RevisionNotFound", message: `Invalid rev id: ${rev}` });
    const f = commit.files.get(path);
    if (!f) return hfError(req, res, { status: 404, code: "EntryNotFound", message: "Entry not found" }, { "X-Repo-Commit": commit.sha });
    if (f.lfs) {
      const location = cdnLocation(repoId, f, commit.date);
      send(
        req,
        res,
        302,
        {
          Location: location,
          "Content-Type": "text/plain; charset=utf-8",
          ETag: `"${f.oid}"`,
          "X-Linked-Etag": `"${f.blob.sha256}"`,
          "X-Linked-Size": String(f.blob.size),
          "X-Repo-Commit": commit.sha,
          "Accept-Ranges": "bytes",
          Vary: "Origin, Accept",
        },
        `Found. Redirecting to ${location}`,
      );
      return;
    }
    await sendBlob(req, res, f.blob, {
      etag: `"${f.oid}"`,
      lastModified: commit.date,
      contentType: contentTypeOf(path),
      headers: { "X-Repo-Commit": commit.sha },
      faults,
      target: { host: "hub", repoId, path },
    });
  }

  function ggufBlock(repo: Repo, commit: Commit): GgufInfo | undefined {
    const ggufs = [...commit.files.values()].filter((f) => f.path.toLowerCase().endsWith(".gguf"));
    if (ggufs.length === 0) return undefined;
    const bytes = ggufs.reduce((n, f) => n + f.blob.size, 0);
    return {
      total: Math.round(bytes / 2),
      architecture: "llama",
      context_length: 4096,
      chat_template: DEFAULT_CHATML,
      bos_token: "<s>",
      eos_token: "</s>",
      ...repo.gguf,
    };
  }

  function modelInfo(req: IncomingMessage, res: ServerResponse, repo: Repo, rev: string, url: URL): void {
    const commit = resolveRevision(repo, rev);
    if (!commit) return hfError(req, res, { status: 404, code: "RevisionNotFound", message: `Invalid rev id: ${rev}` });
    const blobs = ["true", "1"].includes(url.searchParams.get("blobs") ?? "");
    const files = [...commit.files.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
    const gguf = ggufBlock(repo, commit);
    const slash = repo.id.indexOf("/");
    sendJson(req, res, 200, {
      _id: createHash("sha1").update(repo.id).digest("hex").slice(0, 24),
      id: repo.id,
      modelId: repo.id,
      author: slash > 0 ? repo.id.slice(0, slash) : undefined,
      sha: commit.sha,
      lastModified: commit.date.toISOString(),
      createdAt: repo.createdAt.toISOString(),
      private: repo.private,
      gated: repo.gated,
      disabled: repo.disabled,
      downloads: repo.downloads,
      likes: repo.likes,
      tags: repo.tags ?? (gguf ? ["gguf", "text-generation"] : []),
      pipeline_tag: repo.pipeline_tag ?? (gguf ? "text-generation" : undefined),
      library_name: repo.library_name ?? (gguf ? "gguf" : undefined),
      siblings: files.map((f) =>
        blobs
          ? {
              rfilename: f.path,
              size: f.blob.size,
              blobId: f.oid,
              ...(f.lfs ? { lfs: { sha256: f.blob.sha256, size: f.blob.size, pointerSize: f.pointerSize } } : {}),
            }
          : { rfilename: f.path },
      ),
      ...(gguf ? { gguf } : {}),
      usedStorage: files.reduce((n, f) => n + f.blob.size, 0),
    });
  }

  function refs(req: IncomingMessage, res: ServerResponse, repo: Repo, url: URL): void {
    const withPrs = ["true", "1"].includes(url.searchParams.get("include_prs") ?? "");
    sendJson(req, res, 200, {
      branches: [...repo.branches].map(([name, sha]) => ({ name, ref: `refs/heads/${name}`, targetCommit: sha })),
      converts: [],
      tags: [...repo.tagRefs].map(([name, sha]) => ({ name, ref: `refs/tags/${name}`, targetCommit: sha })),
      ...(withPrs ? { pullRequests: [...repo.prs].map(([ref, sha]) => ({ name: ref.split("/").pop(), ref, targetCommit: sha })) } : {}),
    });
  }

  function tree(req: IncomingMessage, res: ServerResponse, repo: Repo, rev: string, rawBase: string, url: URL): void {
    const commit = resolveRevision(repo, rev);
    if (!commit) return hfError(req, res, { status: 404, code: "RevisionNotFound", message: `Invalid rev id: ${rev}` });
    const base = rawBase.replace(/^\/+|\/+$/g, "");
    const recursive = ["true", "1"].includes(url.searchParams.get("recursive") ?? "");
    const dirs = new Set<string>();
    for (const p of commit.files.keys()) {
      const parts = p.split("/");
      for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
    }
    if (base !== "" && !dirs.has(base)) {
      return hfError(req, res, { status: 404, code: "EntryNotFound", message: `Path ${base} not found or not a directory` }, { "X-Repo-Commit": commit.sha });
    }
    const prefix = base === "" ? "" : `${base}/`;
    const under = (p: string) => p.startsWith(prefix) && (recursive || !p.slice(prefix.length).includes("/"));
    type TreeEntry = { type: "file" | "directory"; oid: string; size: number; path: string; lfs?: { oid: string; size: number; pointerSize: number } };
    const items: TreeEntry[] = [];
    for (const d of dirs) {
      if (under(d)) items.push({ type: "directory", oid: createHash("sha1").update(`tree ${commit.sha} ${d}`).digest("hex"), size: 0, path: d });
    }
    for (const f of commit.files.values()) {
      if (!under(f.path)) continue;
      items.push({
        type: "file",
        oid: f.oid,
        size: f.blob.size,
        path: f.path,
        ...(f.lfs ? { lfs: { oid: f.blob.sha256, size: f.blob.size, pointerSize: f.pointerSize! } } : {}),
      });
    }
    items.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const limitParam = Number(url.searchParams.get("limit"));
    const limit = Number.isInteger(limitParam) && limitParam > 0 ? limitParam : pageSize;
    const cursor = url.searchParams.get("cursor");
    let offset = 0;
    if (cursor !== null) {
      offset = Number(Buffer.from(cursor, "base64url").toString("utf8"));
      if (!Number.isInteger(offset) || offset < 0) return hfError(req, res, { status: 400, message: "Invalid cursor" });
    }
    const page = items.slice(offset, offset + limit);
    const headers: Record<string, string> = {};
    if (offset + limit < items.length) {
      const next = new URL(url.pathname, hub.url);
      for (const [k, v] of url.searchParams) if (k !== "cursor") next.searchParams.append(k, v);
      next.searchParams.set("cursor", Buffer.from(String(offset + limit), "utf8").toString("base64url"));
      headers.Link = `<${next.toString()}>; rel="next"`;
    }
    sendJson(req, res, 200, page, headers);
  }

  // ---------- CDN ----------

  async function handleCdn(req: IncomingMessage, res: ServerResponse, entry: RequestLogEntry<HfHost>): Promise<void> {
    const url = new URL(req.url ?? "/", cdn.url);
    const id = url.pathname.slice(1);
    const obj = cdnObjects.get(id);
    if (obj) {
      entry.repoId = obj.repoId;
      entry.file = obj.path;
    }
    if (injected(req, res, "cdn", obj?.repoId, obj?.path)) return;
    const xml = (status: number, code: string, message: string) =>
      send(req, res, status, { "Content-Type": "application/xml" }, `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
    if (req.method !== "GET" && req.method !== "HEAD") return xml(405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
    if (!obj) return xml(404, "NoSuchKey", "The specified key does not exist.");
    const expires = Number(url.searchParams.get("expires"));
    const sig = url.searchParams.get("X-Amz-Signature") ?? "";
    const good = Buffer.from(signCdn(id, expires));
    const given = Buffer.from(sig);
    if (!Number.isInteger(expires) || given.length !== good.length || !timingSafeEqual(given, good)) {
      return xml(403, "AccessDenied", "Request has expired or the signature does not match");
    }
    if (expires < Date.now() / 1000) return xml(403, "AccessDenied", "Request has expired");
    const name = obj.path.split("/").pop()!;
    await sendBlob(req, res, obj.blob, {
      etag: `"${obj.blob.sha256}"`,
      lastModified: obj.lastModified,
      contentType: "application/octet-stream",
      headers: { "Content-Disposition": `attachment; filename*=UTF-8''${encodeURIComponent(name)}; filename="${name.replace(/"/g, "")}";` },
      faults,
      target: { host: "cdn", repoId: obj.repoId, path: obj.path },
    });
  }

  // ---------- public API ----------

  async function buildFiles(files: Record<string, HfFileInput>): Promise<Map<string, RepoFile>> {
    const out = new Map<string, RepoFile>();
    for (const [p, input] of Object.entries(files)) {
      const path = p.replace(/^\/+/, "");
      out.set(path, await toRepoFile(path, input));
    }
    return out;
  }

  const standin: HfStandin = {
    ...faultControls(faults, { host: "hub" } satisfies FaultScope),
    hub: {
      get url() {
        return hub.url;
      },
      get port() {
        return hub.port;
      },
    },
    get url() {
      return hub.url;
    },
    get cdnUrl() {
      return cdn.url;
    },
    requests: log.requests,
    clearLog: () => log.clear(),
    bytesServed: (repoId, path) => log.fileBytes(repoId, path),

    async addRepo(repoId, opts) {
      const files = await buildFiles(opts.files);
      const date = opts.date ?? new Date();
      const shas = opts.commits && opts.commits.length > 0 ? opts.commits : [newSha(repoId, files)];
      for (const s of shas) if (!isSha(s)) throw new Error(`hf-standin: commit sha must be 40 lowercase hex: ${s}`);
      const commits = new Map<string, Commit>();
      for (const s of shas) commits.set(s, { sha: s, date, files });
      const head = shas[shas.length - 1]!;
      repos.set(repoId, {
        id: repoId,
        gated: opts.gated ?? false,
        private: opts.private ?? false,
        disabled: opts.disabled ?? false,
        downloads: opts.downloads ?? 0,
        likes: opts.likes ?? 0,
        ...(opts.tags ? { tags: opts.tags } : {}),
        ...(opts.pipeline_tag ? { pipeline_tag: opts.pipeline_tag } : {}),
        ...(opts.library_name ? { library_name: opts.library_name } : {}),
        ...(opts.gguf ? { gguf: opts.gguf } : {}),
        createdAt: date,
        commits,
        branches: new Map([["main", head]]),
        tagRefs: new Map(),
        prs: new Map(),
        approved: repos.get(repoId)?.approved ?? new Set(),
      });
      return { id: repoId, commit: head };
    },

    async pushCommit(repoId, changes, opts = {}) {
      const repo = getRepo(repoId);
      const branch = opts.branch ?? "main";
      const parentSha = repo.branches.get(branch) ?? repo.branches.get("main")!;
      const files = new Map(repo.commits.get(parentSha)!.files);
      for (const [p, input] of Object.entries(changes)) {
        const path = p.replace(/^\/+/, "");
        if (input === null) files.delete(path);
        else files.set(path, await toRepoFile(path, input));
      }
      const sha = opts.sha ?? newSha(repoId, files);
      if (!isSha(sha)) throw new Error(`hf-standin: commit sha must be 40 lowercase hex: ${sha}`);
      // Commit dates strictly increase so Last-Modified/lastModified move forward.
      const prevDate = repo.commits.get(parentSha)!.date;
      const date = opts.date ?? new Date(Math.max(Date.now(), prevDate.getTime() + 1000));
      repo.commits.set(sha, { sha, date, files });
      repo.branches.set(branch, sha);
      return sha;
    },

    setRef(repoId, ref, commit, kind = "branch") {
      const repo = getRepo(repoId);
      if (!repo.commits.has(commit)) throw new Error(`hf-standin: unknown commit ${commit}`);
      if (ref.startsWith("refs/pr/")) repo.prs.set(ref, commit);
      else if (kind === "tag") repo.tagRefs.set(ref, commit);
      else repo.branches.set(ref, commit);
    },

    commitOf(repoId, revision = "main") {
      const repo = repos.get(repoId);
      return repo ? resolveRevision(repo, revision)?.sha : undefined;
    },

    updateRepo(repoId, patch) {
      Object.assign(getRepo(repoId), patch);
    },
    removeRepo(repoId) {
      repos.delete(repoId);
    },
    approve(repoId, token) {
      getRepo(repoId).approved.add(token);
    },
    revoke(repoId, token) {
      getRepo(repoId).approved.delete(token);
    },
    addToken(token) {
      validTokens?.add(token);
    },
    fileInfo(repoId, path, revision = "main") {
      const repo = repos.get(repoId);
      const f = repo ? resolveRevision(repo, revision)?.files.get(path) : undefined;
      return f ? { sha256: f.blob.sha256, size: f.blob.size, lfs: f.lfs, oid: f.oid } : undefined;
    },
    expireCdnUrls() {
      secret = randomBytes(32);
    },

    async down(opts = {}) {
      const mode = opts.mode ?? "refused";
      const host = opts.host ?? "both";
      if (host !== "cdn") await hub.down(mode);
      if (host !== "hub") await cdn.down(mode);
    },
    async up() {
      await hub.up();
      await cdn.up();
    },
    async close() {
      await Promise.all([hub.close(), cdn.close()]);
    },
  };
  return standin;
}

/** URL of a file on the hub, revision encoded as one segment. */
export function hfResolveUrl(endpoint: string, repoId: string, revision: string, path: string): string {
  return `${endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${encodePath(path)}`;
}
