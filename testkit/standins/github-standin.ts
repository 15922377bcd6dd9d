/**
 * GitHub releases stand-in: a "github" listener (web download URLs + a slice of the REST API)
 * that 302s to an "assets" listener on another port (objects.githubusercontent-like, S3 presigned
 * URL), which serves the bytes with ranges. The asset host never needs a token and — like S3 with
 * a presigned URL — rejects a request that also carries an Authorization header (400).
 */
import { createHmac, randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type FileBody, type DiskFile, sendBlob, toBlob } from "./body.js";
import { type FaultControls, faultControls, Faults } from "./faults.js";
import { type DownMode, Listener } from "./listener.js";
import { RequestLog, type RequestLogEntry } from "./request-log.js";
import { bearerToken, decodeSegments, encodePath, send, sendJson, statusText } from "./respond.js";

export type GithubHost = "github" | "assets";

export interface GithubStandinOptions {
  /** Tokens accepted (`Authorization: Bearer <t>` or `token <t>`). Undefined: any token is valid. Any valid token may read private repos. */
  validTokens?: Iterable<string>;
  /** Lifetime of signed asset URLs (default 300 s, as GitHub). */
  urlTtlSeconds?: number;
}

export interface GithubAssetInfo {
  id: number;
  name: string;
  size: number;
  sha256: string;
  browser_download_url: string;
}

export interface GithubStandin extends FaultControls {
  /** github.com stand-in (also serves the /repos/… API paths). */
  readonly url: string;
  /** Asset host stand-in (signed URLs). */
  readonly assetsUrl: string;
  readonly requests: RequestLogEntry<GithubHost>[];
  clearLog(): void;
  /** File-content bytes of this asset sent by the asset host. */
  bytesServed(repo: string, asset: string): number;
  addRelease(
    repo: string,
    tag: string,
    assets: Record<string, Uint8Array | DiskFile>,
    opts?: { private?: boolean; prerelease?: boolean; draft?: boolean },
  ): Promise<{ id: number; tag: string; assets: GithubAssetInfo[] }>;
  setPrivate(repo: string, isPrivate: boolean): void;
  addToken(token: string): void;
  /** Invalidates every signed asset URL issued so far (403). */
  expireAssetUrls(): void;
  down(opts?: { mode?: DownMode; host?: GithubHost | "both" }): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

interface Asset {
  id: number;
  name: string;
  blob: FileBody;
  repo: string;
  tag: string;
  createdAt: Date;
}

interface Release {
  id: number;
  tag: string;
  prerelease: boolean;
  draft: boolean;
  createdAt: Date;
  assets: Map<string, Asset>;
}

interface GhRepo {
  id: number;
  private: boolean;
  releases: Map<string, Release>;
}

export async function startGithubStandin(options: GithubStandinOptions = {}): Promise<GithubStandin> {
  const log = new RequestLog<GithubHost>();
  const faults = new Faults();
  const repos = new Map<string, GhRepo>();
  const assetsById = new Map<number, Asset>();
  const validTokens = options.validTokens ? new Set(options.validTokens) : undefined;
  const ttl = options.urlTtlSeconds ?? 300;
  let secret = randomBytes(32);
  let nextId = 1000;

  const gh = new Listener<GithubHost>("github", log, (req, res, entry) => handleGithub(req, res, entry));
  const assets = new Listener<GithubHost>("assets", log, (req, res, entry) => handleAssets(req, res, entry));
  await gh.listen();
  await assets.listen();

  const notFound = (req: IncomingMessage, res: ServerResponse) =>
    sendJson(req, res, 404, { message: "Not Found", documentation_url: "https://docs.github.com/rest", status: "404" });

  /** true = allowed; false = an error response was sent. */
  function checkAccess(req: IncomingMessage, res: ServerResponse, repo: GhRepo | undefined): boolean {
    const t = bearerToken(req, ["bearer", "token"]);
    const valid = t !== undefined && t !== "" && (!validTokens || validTokens.has(t));
    if (t !== undefined && !valid) {
      sendJson(req, res, 401, { message: "Bad credentials", documentation_url: "https://docs.github.com/rest", status: "401" });
      return false;
    }
    if (!repo) {
      notFound(req, res);
      return false;
    }
    if (repo.private && !valid) {
      sendJson(req, res, 401, { message: "Requires authentication", documentation_url: "https://docs.github.com/rest", status: "401" });
      return false;
    }
    return true;
  }

  function sign(id: number, date: number, expires: number, key = secret): string {
    return createHmac("sha256", key).update(`${id}:${date}:${expires}`).digest("hex");
  }

  function signedUrl(a: Asset): string {
    const date = Math.floor(Date.now() / 1000);
    const q = new URLSearchParams({
      "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
      "X-Amz-Credential": "STANDIN/20250101/us-east-1/s3/aws4_request",
      "X-Amz-Date": String(date),
      "X-Amz-Expires": String(ttl),
      "X-Amz-Signature": sign(a.id, date, ttl),
      "X-Amz-SignedHeaders": "host",
      actor_id: "0",
      key_id: "0",
      repo_id: String(repos.get(a.repo)?.id ?? 0),
      "response-content-disposition": `attachment; filename=${a.name}`,
      "response-content-type": "application/octet-stream",
    });
    return `${assets.url}/github-production-release-asset/${a.id}?${q.toString()}`;
  }

  function redirect(req: IncomingMessage, res: ServerResponse, a: Asset): void {
    const location = signedUrl(a);
    send(req, res, 302, { Location: location, "Content-Type": "text/html; charset=utf-8" }, `<html><body>You are being <a href="${location}">redirected</a>.</body></html>`);
  }

  function assetJson(a: Asset, repo: string) {
    return {
      id: a.id,
      name: a.name,
      label: "",
      state: "uploaded",
      content_type: "application/octet-stream",
      size: a.blob.size,
      digest: `sha256:${a.blob.sha256}`,
      created_at: a.createdAt.toISOString(),
      updated_at: a.createdAt.toISOString(),
      url: `${gh.url}/repos/${repo}/releases/assets/${a.id}`,
      browser_download_url: `${gh.url}/${repo}/releases/download/${encodeURIComponent(a.tag)}/${encodePath(a.name)}`,
    };
  }

  function releaseJson(r: Release, repo: string) {
    return {
      id: r.id,
      tag_name: r.tag,
      name: r.tag,
      draft: r.draft,
      prerelease: r.prerelease,
      created_at: r.createdAt.toISOString(),
      published_at: r.createdAt.toISOString(),
      url: `${gh.url}/repos/${repo}/releases/${r.id}`,
      assets: [...r.assets.values()].map((a) => assetJson(a, repo)),
    };
  }

  function injected(req: IncomingMessage, res: ServerResponse, host: GithubHost, repoId?: string, path?: string): boolean {
    const f = faults.takeRequestFault({ host, repoId, path });
    if (!f) return false;
    if (f.kind === "rateLimit") {
      const reset = Math.floor(Date.now() / 1000) + f.resetSeconds;
      sendJson(req, res, 429, { message: "API rate limit exceeded (stand-in)", documentation_url: "https://docs.github.com/rest" }, {
        "X-RateLimit-Limit": "60",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": String(reset),
        "Retry-After": String(f.resetSeconds),
      });
    } else {
      sendJson(req, res, f.status, { message: statusText(f.status) });
    }
    return true;
  }

  async function handleGithub(req: IncomingMessage, res: ServerResponse, entry: RequestLogEntry<GithubHost>): Promise<void> {
    let segs: string[];
    try {
      segs = decodeSegments(new URL(req.url ?? "/", gh.url).pathname);
    } catch {
      return sendJson(req, res, 400, { message: "Bad Request" });
    }
    // GitHub Enterprise serves the REST API under /api/v3; accept it as well as the bare form.
    if (segs[0] === "api" && segs[1] === "v3") segs = segs.slice(2);
    // /{owner}/{repo}/releases/download/{tag}/{asset}
    if (segs.length >= 6 && segs[2] === "releases" && segs[3] === "download") {
      const repoId = `${segs[0]}/${segs[1]}`;
      const name = segs.slice(5).join("/");
      entry.repoId = repoId;
      entry.file = name;
      if (injected(req, res, "github", repoId, name)) return;
      const repo = repos.get(repoId);
      if (!checkAccess(req, res, repo)) return;
      const a = repo!.releases.get(segs[4]!)?.assets.get(name);
      if (!a) return notFound(req, res);
      return redirect(req, res, a);
    }
    // REST API: /repos/{owner}/{repo}/releases/...
    if (segs[0] === "repos" && segs.length >= 4 && segs[3] === "releases") {
      const repoId = `${segs[1]}/${segs[2]}`;
      entry.repoId = repoId;
      if (injected(req, res, "github", repoId)) return;
      const repo = repos.get(repoId);
      if (!checkAccess(req, res, repo)) return;
      const rest = segs.slice(4);
      const published = [...repo!.releases.values()].filter((r) => !r.draft);
      if (rest.length === 0) return sendJson(req, res, 200, published.reverse().map((r) => releaseJson(r, repoId)));
      if (rest[0] === "latest" && rest.length === 1) {
        const latest = published.filter((r) => !r.prerelease).pop();
        return latest ? sendJson(req, res, 200, releaseJson(latest, repoId)) : notFound(req, res);
      }
      if (rest[0] === "tags" && rest.length === 2) {
        const r = repo!.releases.get(rest[1]!);
        return r ? sendJson(req, res, 200, releaseJson(r, repoId)) : notFound(req, res);
      }
      if (rest[0] === "assets" && rest.length === 2) {
        const a = assetsById.get(Number(rest[1]));
        if (!a || a.repo !== repoId) return notFound(req, res);
        entry.file = a.name;
        if ((req.headers.accept ?? "").includes("application/octet-stream")) return redirect(req, res, a);
        return sendJson(req, res, 200, assetJson(a, repoId));
      }
      return notFound(req, res);
    }
    if (injected(req, res, "github")) return;
    notFound(req, res);
  }

  async function handleAssets(req: IncomingMessage, res: ServerResponse, entry: RequestLogEntry<GithubHost>): Promise<void> {
    const url = new URL(req.url ?? "/", assets.url);
    const m = /^\/github-production-release-asset\/(\d+)$/.exec(url.pathname);
    const a = m ? assetsById.get(Number(m[1])) : undefined;
    if (a) {
      entry.repoId = a.repo;
      entry.file = a.name;
    }
    if (injected(req, res, "assets", a?.repo, a?.name)) return;
    const xml = (status: number, code: string, message: string) =>
      send(req, res, status, { "Content-Type": "application/xml" }, `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
    if (req.headers.authorization !== undefined) {
      return xml(
        400,
        "InvalidArgument",
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
      );
    }
    if (req.method !== "GET" && req.method !== "HEAD") return xml(405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
    if (!a) return xml(404, "NoSuchKey", "The specified key does not exist.");
    const date = Number(url.searchParams.get("X-Amz-Date"));
    const expires = Number(url.searchParams.get("X-Amz-Expires"));
    if (url.searchParams.get("X-Amz-Signature") !== sign(a.id, date, expires)) {
      return xml(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.");
    }
    if (date + expires < Date.now() / 1000) return xml(403, "AccessDenied", "Request has expired");
    await sendBlob(req, res, a.blob, {
      etag: `"${a.blob.md5 ?? a.blob.sha256}"`,
      lastModified: a.createdAt,
      contentType: "application/octet-stream",
      headers: { "Content-Disposition": `attachment; filename=${a.name}` },
      faults,
      target: { host: "assets", repoId: a.repo, path: a.name },
    });
  }

  return {
    ...faultControls(faults),
    get url() {
      return gh.url;
    },
    get assetsUrl() {
      return assets.url;
    },
    requests: log.requests,
    clearLog: () => log.clear(),
    bytesServed: (repo, asset) => log.fileBytes(repo, asset, ["assets"]),

    async addRelease(repoId, tag, files, opts = {}) {
      if (!/^[^/]+\/[^/]+$/.test(repoId)) throw new Error(`github-standin: repo must be "owner/name": ${repoId}`);
      let repo = repos.get(repoId);
      if (!repo) {
        repo = { id: nextId++, private: false, releases: new Map() };
        repos.set(repoId, repo);
      }
      if (opts.private !== undefined) repo.private = opts.private;
      const createdAt = new Date();
      const release: Release = { id: nextId++, tag, prerelease: opts.prerelease ?? false, draft: opts.draft ?? false, createdAt, assets: new Map() };
      for (const [name, src] of Object.entries(files)) {
        const a: Asset = { id: nextId++, name, blob: await toBlob(src, src instanceof Uint8Array || src.sha256 === undefined), repo: repoId, tag, createdAt };
        release.assets.set(name, a);
        assetsById.set(a.id, a);
      }
      const old = repo.releases.get(tag);
      if (old) for (const a of old.assets.values()) assetsById.delete(a.id);
      repo.releases.set(tag, release);
      return {
        id: release.id,
        tag,
        assets: [...release.assets.values()].map((a) => ({
          id: a.id,
          name: a.name,
          size: a.blob.size,
          sha256: a.blob.sha256,
          browser_download_url: assetJson(a, repoId).browser_download_url,
        })),
      };
    },
    setPrivate(repoId, isPrivate) {
      const r = repos.get(repoId);
      if (!r) throw new Error(`github-standin: unknown repo ${repoId}`);
      r.private = isPrivate;
    },
    addToken(token) {
      validTokens?.add(token);
    },
    expireAssetUrls() {
      secret = randomBytes(32);
    },
    async down(opts = {}) {
      const mode = opts.mode ?? "refused";
      const host = opts.host ?? "both";
      if (host !== "assets") await gh.down(mode);
      if (host !== "github") await assets.down(mode);
    },
    async up() {
      await gh.up();
      await assets.up();
    },
    async close() {
      await Promise.all([gh.close(), assets.close()]);
    },
  };
}
