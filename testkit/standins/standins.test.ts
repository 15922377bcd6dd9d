import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type GithubStandin,
  type HfStandin,
  type RouterStandin,
  decideRange,
  hfResolveUrl,
  parseRange,
  startGithubStandin,
  startHfStandin,
  startRouterStandin,
} from "./index.js";

// ---------- helpers ----------

/** Deterministic pseudo-random bytes. */
function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const gitSha1 = (b: Uint8Array) => createHash("sha1").update(`blob ${b.byteLength}\0`).update(b).digest("hex");

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The body arrived completely (Content-Length satisfied). */
  complete: boolean;
}

/** GET over a fresh connection with node:http, collecting whatever arrives, even when the connection is cut. */
function rawGet(url: string, headers: Record<string, string> = {}, method = "GET"): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", () => {});
      res.on("close", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

/** Byte equality without vitest's slow element-wise deep equal. */
function expectBytes(got: ArrayBuffer | Uint8Array, want: Uint8Array): void {
  const g = got instanceof Uint8Array ? got : new Uint8Array(got);
  expect(g.byteLength).toBe(want.byteLength);
  expect(Buffer.from(g.buffer, g.byteOffset, g.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength))).toBe(true);
}

async function json(r: Response): Promise<unknown> {
  return JSON.parse(await r.text()) as unknown;
}

// ---------- range unit ----------

describe("range parsing", () => {
  it("parses the supported forms", () => {
    expect(parseRange(undefined, 10)).toEqual({ kind: "full" });
    expect(parseRange("bytes=2-", 10)).toEqual({ kind: "partial", start: 2, end: 9 });
    expect(parseRange("bytes=2-4", 10)).toEqual({ kind: "partial", start: 2, end: 4 });
    expect(parseRange("bytes=2-400", 10)).toEqual({ kind: "partial", start: 2, end: 9 });
    expect(parseRange("bytes=-3", 10)).toEqual({ kind: "partial", start: 7, end: 9 });
    expect(parseRange("bytes=10-", 10)).toEqual({ kind: "unsatisfiable" });
    expect(parseRange("bytes=0-", 0)).toEqual({ kind: "unsatisfiable" });
    expect(parseRange("bytes=5-2", 10)).toEqual({ kind: "full" });
    expect(parseRange("bytes=0-1,3-4", 10)).toEqual({ kind: "full" });
    expect(parseRange("items=0-1", 10)).toEqual({ kind: "full" });
    expect(decideRange({ range: "bytes=1-", "if-range": '"a"' }, 10, '"a"')).toEqual({ kind: "partial", start: 1, end: 9 });
    expect(decideRange({ range: "bytes=1-", "if-range": '"b"' }, 10, '"a"')).toEqual({ kind: "full" });
  });
});

// ---------- Hugging Face ----------

describe("hf stand-in", () => {
  let hf: HfStandin;
  let dir: string;
  const REPO = "org/tiny-GGUF";
  const model = bytes(300_000, 7);
  const config = new TextEncoder().encode('{"model_type":"llama"}\n');
  let head: string;

  const resolve = (repo: string, path: string, rev = "main") => hfResolveUrl(hf.url, repo, rev, path);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "standins-"));
    hf = await startHfStandin({ validTokens: ["hf_good", "hf_other"], treePageSize: 50 });
    ({ commit: head } = await hf.addRepo(REPO, {
      files: { "model-q4.gguf": model, "config.json": config, "sub/dir/readme.md": new TextEncoder().encode("# hi\n") },
      downloads: 42,
      likes: 7,
      gguf: { architecture: "llama", context_length: 1024 },
    }));
    await hf.addRepo("org/gated", { files: { "m.gguf": bytes(1000, 3) }, gated: "manual" });
    await hf.addRepo("org/private", { files: { "m.gguf": bytes(1000, 4) }, private: true });
    await hf.addRepo("org/disabled", { files: { "m.gguf": bytes(1000, 5) }, disabled: true });
  });
  afterAll(async () => {
    await hf.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    hf.clearFaults();
    hf.clearLog();
  });

  it("serves small git files with 200, git-sha1 ETag, Content-Length and X-Repo-Commit (GET and HEAD)", async () => {
    const r = await fetch(resolve(REPO, "config.json"));
    expect(r.status).toBe(200);
    expect(r.headers.get("etag")).toBe(`"${gitSha1(config)}"`);
    expect(r.headers.get("content-length")).toBe(String(config.byteLength));
    expect(r.headers.get("x-repo-commit")).toBe(head);
    expect(head).toMatch(/^[0-9a-f]{40}$/);
    expectBytes(await r.arrayBuffer(), config);
    const h = await fetch(resolve(REPO, "config.json"), { method: "HEAD" });
    expect(h.status).toBe(200);
    expect(h.headers.get("content-length")).toBe(String(config.byteLength));
    expect(h.headers.get("x-repo-commit")).toBe(head);
    const nested = await fetch(resolve(REPO, "sub/dir/readme.md"));
    expect(await nested.text()).toBe("# hi\n");
    expect(hf.bytesServed(REPO, "config.json")).toBe(config.byteLength);
  });

  it("302s LFS files to a signed CDN URL on another port with linked etag/size", async () => {
    for (const method of ["GET", "HEAD"]) {
      const r = await fetch(resolve(REPO, "model-q4.gguf"), { method, redirect: "manual" });
      expect(r.status).toBe(302);
      const loc = new URL(r.headers.get("location")!);
      expect(loc.origin).toBe(hf.cdnUrl);
      expect(loc.port).not.toBe(String(hf.hub.port));
      expect(loc.searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
      expect(Number(loc.searchParams.get("expires"))).toBeGreaterThan(Date.now() / 1000);
      expect(r.headers.get("x-linked-etag")).toBe(`"${sha256(model)}"`);
      expect(r.headers.get("x-linked-size")).toBe(String(model.byteLength));
      expect(r.headers.get("x-repo-commit")).toBe(head);
      expect(r.headers.get("etag")).toMatch(/^"[0-9a-f]{40}"$/);
      const body = Buffer.from(await r.arrayBuffer());
      const cl = Number(r.headers.get("content-length"));
      expect(cl).toBeLessThan(model.byteLength);
      if (method === "GET") expect(body.byteLength).toBe(cl);
    }
    const r = await fetch(resolve(REPO, "model-q4.gguf"));
    expect(r.status).toBe(200);
    expect(r.headers.get("etag")).toBe(`"${sha256(model)}"`);
    expect(r.headers.get("accept-ranges")).toBe("bytes");
    expect(r.headers.get("content-length")).toBe(String(model.byteLength));
    expectBytes(await r.arrayBuffer(), model);
    expect(hf.bytesServed(REPO, "model-q4.gguf")).toBe(model.byteLength);
    const cdnEntries = hf.requests.filter((e) => e.host === "cdn");
    expect(cdnEntries).toHaveLength(1);
    expect(cdnEntries[0]).toMatchObject({ method: "GET", status: 200, file: "model-q4.gguf", repoId: REPO, completed: true });
  });

  it("CDN: 206 for N- and N-M, 416 past the end, If-Range", async () => {
    const loc = (await fetch(resolve(REPO, "model-q4.gguf"), { redirect: "manual" })).headers.get("location")!;
    const etag = `"${sha256(model)}"`;
    let r = await fetch(loc, { headers: { range: "bytes=1000-" } });
    expect(r.status).toBe(206);
    expect(r.headers.get("content-range")).toBe(`bytes 1000-${model.byteLength - 1}/${model.byteLength}`);
    expect(r.headers.get("content-length")).toBe(String(model.byteLength - 1000));
    expectBytes(await r.arrayBuffer(), model.subarray(1000));
    r = await fetch(loc, { headers: { range: "bytes=10-19" } });
    expect(r.status).toBe(206);
    expect(r.headers.get("content-range")).toBe(`bytes 10-19/${model.byteLength}`);
    expectBytes(await r.arrayBuffer(), model.subarray(10, 20));
    r = await fetch(loc, { headers: { range: `bytes=${model.byteLength}-` } });
    expect(r.status).toBe(416);
    expect(r.headers.get("content-range")).toBe(`bytes */${model.byteLength}`);
    expect(r.headers.get("content-length")).toBe("0");
    await r.arrayBuffer();
    r = await fetch(loc, { headers: { range: "bytes=5-", "if-range": etag } });
    expect(r.status).toBe(206);
    await r.arrayBuffer();
    r = await fetch(loc, { headers: { range: "bytes=5-", "if-range": '"stale"' } });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-length")).toBe(String(model.byteLength));
    expectBytes(await r.arrayBuffer(), model);
    // The log records the range start and exact body bytes of each response.
    const cdn = hf.requests.filter((e) => e.host === "cdn");
    expect(cdn.map((e) => e.status)).toEqual([206, 206, 416, 206, 200]);
    expect(cdn[0]!.rangeStart).toBe(1000);
    expect(hf.bytesServed(REPO, "model-q4.gguf")).toBe(model.byteLength - 1000 + 10 + (model.byteLength - 5) + model.byteLength);
  });

  it("CDN rejects bad signatures and expired URLs", async () => {
    const loc = (await fetch(resolve(REPO, "model-q4.gguf"), { redirect: "manual" })).headers.get("location")!;
    const bad = loc.replace(/X-Amz-Signature=[0-9a-f]+/, "X-Amz-Signature=" + "0".repeat(64));
    expect((await fetch(bad)).status).toBe(403);
    hf.expireCdnUrls();
    expect((await fetch(loc)).status).toBe(403);
    expect((await fetch(resolve(REPO, "model-q4.gguf"))).status).toBe(200);
  });

  it("answers every error row of the table with status, X-Error-Code, X-Error-Message and JSON", async () => {
    const check = async (url: string, token: string | undefined, status: number, code: string | null, msg?: RegExp) => {
      const r = await fetch(url, { redirect: "manual", headers: token ? { authorization: `Bearer ${token}` } : {} });
      expect(r.status, url).toBe(status);
      expect(r.headers.get("x-error-code"), url).toBe(code);
      const body = (await json(r)) as { error: string };
      expect(typeof body.error).toBe("string");
      expect(r.headers.get("x-error-message")).toBe(body.error);
      expect(r.headers.get("content-type")).toMatch(/^application\/json/);
      if (msg) expect(body.error).toMatch(msg);
      return r;
    };
    await check(resolve("org/missing", "m.gguf"), undefined, 401, "RepoNotFound");
    await check(resolve("org/missing", "m.gguf"), "hf_good", 404, "RepoNotFound");
    await check(resolve("org/private", "m.gguf"), undefined, 401, "RepoNotFound");
    await check(resolve("org/private", "m.gguf"), "hf_good", 404, "RepoNotFound");
    await check(resolve("org/gated", "m.gguf"), undefined, 401, "GatedRepo", /restricted/);
    await check(resolve("org/gated", "m.gguf"), "hf_good", 403, "GatedRepo", /authorized list/);
    await check(resolve(REPO, "config.json", "no-such-branch"), undefined, 404, "RevisionNotFound");
    const odd = await fetch(resolve(REPO, "config.json", "brânch\n"));
    expect(odd.status).toBe(404);
    expect(odd.headers.get("x-error-message")).toBe("Invalid rev id: br?nch?");
    const missing = await check(resolve(REPO, "nope.gguf"), undefined, 404, "EntryNotFound");
    expect(missing.headers.get("x-repo-commit")).toBe(head);
    await check(resolve("org/disabled", "m.gguf"), undefined, 403, null, /^Access to this resource is disabled\.$/);
    await check(resolve(REPO, "config.json"), "hf_unknown_token", 401, null, /Invalid credentials/);
    // The same rules apply to the API.
    await check(`${hf.url}/api/models/org/missing`, undefined, 401, "RepoNotFound");
    await check(`${hf.url}/api/models/org/missing`, "hf_good", 404, "RepoNotFound");
    await check(`${hf.url}/api/models/${REPO}/revision/nope`, undefined, 404, "RevisionNotFound");
    await check(`${hf.url}/api/models/org/disabled`, undefined, 403, null);
  });

  it("gated and private repos open up for approved tokens; the token goes to the hub only", async () => {
    hf.approve("org/gated", "hf_good");
    hf.approve("org/private", "hf_good");
    for (const repo of ["org/gated", "org/private"]) {
      const r = await fetch(resolve(repo, "m.gguf"), { headers: { authorization: "Bearer hf_good" } });
      expect(r.status).toBe(200);
      expect((await r.arrayBuffer()).byteLength).toBe(1000);
      const other = await fetch(resolve(repo, "m.gguf"), { headers: { authorization: "Bearer hf_other" }, redirect: "manual" });
      expect(other.status).toBe(repo === "org/gated" ? 403 : 404);
      await other.arrayBuffer();
    }
    const hubEntries = hf.requests.filter((e) => e.host === "hub");
    const cdnEntries = hf.requests.filter((e) => e.host === "cdn");
    expect(hubEntries.every((e) => e.headers.authorization?.startsWith("Bearer "))).toBe(true);
    // fetch drops Authorization on the cross-origin redirect; the log proves what the CDN saw.
    expect(cdnEntries).toHaveLength(2);
    expect(cdnEntries.every((e) => e.headers.authorization === undefined)).toBe(true);
    // Metadata of a gated repo is public (as on the real hub); its files are not.
    const info = (await json(await fetch(`${hf.url}/api/models/org/gated`))) as { gated: string };
    expect(info.gated).toBe("manual");
    hf.revoke("org/gated", "hf_good");
    expect((await fetch(resolve("org/gated", "m.gguf"), { headers: { authorization: "Bearer hf_good" } })).status).toBe(403);
  });

  it("pins revisions: pushCommit moves main, older commits and PR refs stay resolvable", async () => {
    const v2 = bytes(5000, 99);
    await hf.addRepo("org/moving", { files: { "m.gguf": bytes(4000, 1), "config.json": config } });
    const c1 = hf.commitOf("org/moving")!;
    const c2 = await hf.pushCommit("org/moving", { "m.gguf": v2, "config.json": null });
    expect(c2).not.toBe(c1);
    hf.setRef("org/moving", "refs/pr/1", c1);
    hf.setRef("org/moving", "v1.0", c1, "tag");
    let r = await fetch(resolve("org/moving", "m.gguf"));
    expect(r.headers.get("content-length")).toBe("5000");
    expectBytes(await r.arrayBuffer(), v2);
    for (const rev of [c1, "refs/pr/1", "v1.0"]) {
      r = await fetch(resolve("org/moving", "m.gguf", rev), { redirect: "manual" });
      expect(r.status, rev).toBe(302);
      expect(r.headers.get("x-repo-commit")).toBe(c1);
      expect(r.headers.get("x-linked-size")).toBe("4000");
      await r.arrayBuffer();
    }
    // The PR ref must be one encoded segment.
    expect(hf.requests.some((e) => e.path.includes("/resolve/refs%2Fpr%2F1/"))).toBe(true);
    r = await fetch(`${hf.url}/org/moving/resolve/refs/pr/1/m.gguf`, { redirect: "manual" });
    expect(r.status).toBe(404);
    expect(r.headers.get("x-error-code")).toBe("RevisionNotFound");
    expect((await fetch(resolve("org/moving", "config.json"))).status).toBe(404);
    expect((await fetch(resolve("org/moving", "config.json", c1))).status).toBe(200);
    const info = (await json(await fetch(`${hf.url}/api/models/org/moving/revision/${c1}`))) as { sha: string; siblings: unknown[] };
    expect(info.sha).toBe(c1);
    expect(info.siblings).toHaveLength(2);
    const refs = (await json(await fetch(`${hf.url}/api/models/org/moving/refs?include_prs=1`))) as Record<string, { targetCommit: string }[]>;
    expect(refs.branches![0]!.targetCommit).toBe(c2);
    expect(refs.tags![0]!.targetCommit).toBe(c1);
    expect(refs.pullRequests![0]!.targetCommit).toBe(c1);
  });

  it("model info: siblings, blobs=true, gguf block, downloads/likes", async () => {
    const plain = (await json(await fetch(`${hf.url}/api/models/${REPO}`))) as Record<string, unknown>;
    expect(plain).toMatchObject({ id: REPO, sha: head, private: false, gated: false, disabled: false, downloads: 42, likes: 7 });
    expect(plain.siblings).toEqual([{ rfilename: "config.json" }, { rfilename: "model-q4.gguf" }, { rfilename: "sub/dir/readme.md" }]);
    expect(plain.gguf).toMatchObject({ architecture: "llama", context_length: 1024, bos_token: "<s>", eos_token: "</s>" });
    expect(typeof (plain.gguf as { chat_template: string }).chat_template).toBe("string");
    expect(typeof plain.lastModified).toBe("string");
    const withBlobs = (await json(await fetch(`${hf.url}/api/models/${REPO}?blobs=true`))) as { siblings: Record<string, unknown>[] };
    const g = withBlobs.siblings.find((s) => s.rfilename === "model-q4.gguf")!;
    expect(g).toMatchObject({ size: model.byteLength, lfs: { sha256: sha256(model), size: model.byteLength } });
    expect((g.lfs as { pointerSize: number }).pointerSize).toBeGreaterThan(100);
    const c = withBlobs.siblings.find((s) => s.rfilename === "config.json")!;
    expect(c).toEqual({ rfilename: "config.json", size: config.byteLength, blobId: gitSha1(config) });
    hf.updateRepo(REPO, { downloads: 1000 });
    expect(((await json(await fetch(`${hf.url}/api/models/${REPO}`))) as { downloads: number }).downloads).toBe(1000);
  });

  it("tree: recursive listing paged with Link rel=next", async () => {
    const files: Record<string, Uint8Array> = { "big.gguf": bytes(100, 1) };
    for (let i = 0; i < 119; i++) files[`shards/part-${String(i).padStart(3, "0")}.txt`] = new TextEncoder().encode(`p${i}`);
    await hf.addRepo("org/many", { files });
    let url: string | undefined = `${hf.url}/api/models/org/many/tree/main?recursive=true`;
    const all: { type: string; path: string; oid: string; size: number; lfs?: { oid: string } }[] = [];
    let pages = 0;
    while (url) {
      const r = await fetch(url);
      expect(r.status).toBe(200);
      const page = (await json(r)) as typeof all;
      expect(page.length).toBeLessThanOrEqual(50);
      all.push(...page);
      pages++;
      const link = r.headers.get("link");
      url = link ? /<([^>]+)>;\s*rel="next"/.exec(link)![1] : undefined;
    }
    expect(pages).toBe(3);
    expect(all).toHaveLength(121); // 120 files + 1 directory
    expect(new Set(all.map((e) => e.path)).size).toBe(121);
    expect(all.find((e) => e.path === "shards")).toMatchObject({ type: "directory" });
    expect(all.find((e) => e.path === "big.gguf")).toMatchObject({ type: "file", size: 100, lfs: { oid: sha256(bytes(100, 1)) } });
    const top = (await json(await fetch(`${hf.url}/api/models/org/many/tree/main`))) as typeof all;
    expect(top.map((e) => e.path)).toEqual(["big.gguf", "shards"]);
    const sub = await fetch(`${hf.url}/api/models/org/many/tree/main/shards?limit=200`);
    expect(((await json(sub)) as unknown[]).length).toBe(119);
    expect(sub.headers.get("link")).toBeNull();
  });

  it("rateLimit → 429 with RateLimit headers (configurable t), then recovers", async () => {
    hf.rateLimit(2, 7);
    for (let i = 0; i < 2; i++) {
      const r = await fetch(resolve(REPO, "config.json"));
      expect(r.status).toBe(429);
      expect(r.headers.get("ratelimit")).toBe('"api";r=0;t=7');
      expect(r.headers.get("ratelimit-policy")).toMatch(/"api"/);
      expect(r.headers.get("retry-after")).toBe("7");
      expect(((await json(r)) as { error: string }).error).toBeTruthy();
    }
    expect((await fetch(resolve(REPO, "config.json"))).status).toBe(200);
  });

  it("failStatus: the next n requests get the status, optionally scoped to one host/file", async () => {
    hf.failStatus(503, 2);
    expect((await fetch(resolve(REPO, "config.json"))).status).toBe(503);
    expect((await fetch(`${hf.url}/api/models/${REPO}`)).status).toBe(503);
    expect((await fetch(resolve(REPO, "config.json"))).status).toBe(200);
    const f = hf.failStatus(502, "always", { host: "cdn", path: "model-q4.gguf" });
    expect((await fetch(resolve(REPO, "config.json"))).status).toBe(200);
    expect((await fetch(resolve(REPO, "model-q4.gguf"))).status).toBe(502);
    expect((await fetch(resolve(REPO, "model-q4.gguf"))).status).toBe(502);
    expect(f.hits).toBe(2);
    f.remove();
    expect((await fetch(resolve(REPO, "model-q4.gguf"))).status).toBe(200);
  });

  it("dropAt cuts the body at exactly that absolute offset (also mid-range), once", async () => {
    const loc = (await fetch(resolve(REPO, "model-q4.gguf"), { redirect: "manual" })).headers.get("location")!;
    hf.clearLog();
    const fault = hf.dropAt(123_457, { path: "model-q4.gguf" });
    let r = await rawGet(loc);
    expect(r.status).toBe(200);
    expect(r.complete).toBe(false);
    expect(r.body.byteLength).toBe(123_457);
    expect(Buffer.compare(r.body, Buffer.from(model.subarray(0, 123_457)))).toBe(0);
    expect(fault.active).toBe(false);
    // Resume from where it stopped: no fault any more.
    r = await rawGet(loc, { range: `bytes=${r.body.byteLength}-` });
    expect(r.status).toBe(206);
    expect(r.complete).toBe(true);
    expect(r.body.byteLength).toBe(model.byteLength - 123_457);
    expect(hf.bytesServed(REPO, "model-q4.gguf")).toBe(model.byteLength);
    expect(hf.requests[0]!.aborted).toBe(true);
    // Absolute offset inside a range request; relative offset counted from the range start.
    hf.dropAt(200_000);
    r = await rawGet(loc, { range: "bytes=150000-" });
    expect(r.body.byteLength).toBe(50_000);
    hf.dropAt(10, { relative: true });
    r = await rawGet(loc, { range: "bytes=150000-" });
    expect(r.body.byteLength).toBe(10);
    expect(r.complete).toBe(false);
    // A range that ends before the offset does not consume the fault.
    const later = hf.dropAt(250_000);
    r = await rawGet(loc, { range: "bytes=0-99" });
    expect(r.complete).toBe(true);
    expect(later.active).toBe(true);
    // Drop at the first byte: headers arrive, no body.
    later.remove();
    hf.dropAt(0);
    r = await rawGet(loc);
    expect(r.status).toBe(200);
    expect(r.body.byteLength).toBe(0);
    expect(r.complete).toBe(false);
  });

  it("corruptByte flips exactly one byte at that absolute offset", async () => {
    hf.corruptByte(77_777);
    const got = new Uint8Array(await (await fetch(resolve(REPO, "model-q4.gguf"))).arrayBuffer());
    expect(got.byteLength).toBe(model.byteLength);
    const diffs: number[] = [];
    for (let i = 0; i < got.length; i++) if (got[i] !== model[i]) diffs.push(i);
    expect(diffs).toEqual([77_777]);
    expect(got[77_777]).toBe(model[77_777]! ^ 0xff);
    // Used up; registered bytes untouched.
    expect(sha256(new Uint8Array(await (await fetch(resolve(REPO, "model-q4.gguf"))).arrayBuffer()))).toBe(sha256(model));
  });

  it("stall pauses the body; 'forever' holds until the client gives up", async () => {
    hf.stall(1000, 400);
    let t = Date.now();
    const got = await (await fetch(resolve(REPO, "model-q4.gguf"))).arrayBuffer();
    expect(got.byteLength).toBe(model.byteLength);
    expect(Date.now() - t).toBeGreaterThanOrEqual(380);
    hf.stall(1000, "forever");
    t = Date.now();
    const r = await fetch(resolve(REPO, "model-q4.gguf"), { signal: AbortSignal.timeout(500) });
    expect(r.status).toBe(200);
    await expect(r.arrayBuffer()).rejects.toThrow();
    expect(Date.now() - t).toBeLessThan(3000);
  });

  it("throttle paces bodies", async () => {
    hf.throttle(600_000);
    const t = Date.now();
    const got = await (await fetch(resolve(REPO, "model-q4.gguf"))).arrayBuffer();
    const ms = Date.now() - t;
    expect(got.byteLength).toBe(model.byteLength);
    expect(ms).toBeGreaterThanOrEqual(400); // 300 kB at 600 kB/s ≈ 0.5 s
    expect(ms).toBeLessThan(2000);
    hf.throttle(null);
  });

  it("down: refused, 503 and hang; up restores service on the same ports", async () => {
    const port = hf.hub.port;
    await hf.down({ mode: "refused" });
    await expect(fetch(resolve(REPO, "config.json"))).rejects.toThrow();
    await expect(rawGet(resolve(REPO, "config.json"))).rejects.toMatchObject({ code: "ECONNREFUSED" });
    await hf.up();
    expect(hf.hub.port).toBe(port);
    expect((await fetch(resolve(REPO, "config.json"))).status).toBe(200);

    await hf.down({ mode: "503" });
    expect((await fetch(resolve(REPO, "config.json"))).status).toBe(503);
    await hf.up();

    await hf.down({ mode: "hang", host: "hub" });
    const t = Date.now();
    await expect(fetch(resolve(REPO, "config.json"), { signal: AbortSignal.timeout(300) })).rejects.toThrow();
    expect(Date.now() - t).toBeGreaterThanOrEqual(250);
    expect(hf.requests.at(-1)).toMatchObject({ host: "hub", status: 0 });
    await hf.up();
    expect((await fetch(resolve(REPO, "config.json"))).status).toBe(200);
  });

  it("streams disk files (hashed once or with a precomputed sha256) with ranges", async () => {
    const data = bytes(3 * 1024 * 1024 + 17, 11);
    const p = join(dir, "disk.gguf");
    writeFileSync(p, data);
    const small = join(dir, "tokenizer.json");
    writeFileSync(small, '{"a":1}');
    await hf.addRepo("org/disk", { files: { "disk.gguf": { path: p }, "tokenizer.json": { path: small } } });
    expect(hf.fileInfo("org/disk", "disk.gguf")).toMatchObject({ sha256: sha256(data), size: data.byteLength, lfs: true });
    let r = await fetch(resolve("org/disk", "disk.gguf"));
    expect(sha256(new Uint8Array(await r.arrayBuffer()))).toBe(sha256(data));
    r = await fetch(resolve("org/disk", "disk.gguf"), { headers: { range: "bytes=2000000-2000099" } });
    expect(r.status).toBe(206);
    expectBytes(await r.arrayBuffer(), data.subarray(2_000_000, 2_000_100));
    r = await fetch(resolve("org/disk", "tokenizer.json"));
    expect(r.headers.get("etag")).toBe(`"${gitSha1(new TextEncoder().encode('{"a":1}'))}"`);
    expect(await r.text()).toBe('{"a":1}');
    await hf.addRepo("org/disk2", { files: { "x.gguf": { path: p, sha256: "ab".repeat(32) } } });
    expect(hf.fileInfo("org/disk2", "x.gguf")!.sha256).toBe("ab".repeat(32));
    const dropped = hf.dropAt(1_500_000, { repoId: "org/disk" });
    const raw = await rawGet((await fetch(resolve("org/disk", "disk.gguf"), { redirect: "manual" })).headers.get("location")!);
    expect(raw.body.byteLength).toBe(1_500_000);
    expect(dropped.hits).toBe(1);
  });
});

describe("close()", () => {
  it("ends stalled, hung and idle connections immediately", async () => {
    const hf = await startHfStandin();
    await hf.addRepo("o/r", { files: { "m.gguf": bytes(200_000, 2) } });
    hf.stall(1000, "forever", { host: "cdn" });
    const stalled = await fetch(hfResolveUrl(hf.url, "o/r", "main", "m.gguf"));
    expect(stalled.status).toBe(200);
    const body = stalled.arrayBuffer();
    await hf.down({ mode: "hang", host: "hub" });
    const hung = fetch(hfResolveUrl(hf.url, "o/r", "main", "m.gguf"));
    await new Promise((r) => setTimeout(r, 50));
    const t = Date.now();
    await hf.close();
    expect(Date.now() - t).toBeLessThan(500);
    await expect(body).rejects.toThrow();
    await expect(hung).rejects.toThrow();
  });
});

// ---------- GitHub ----------

describe("github stand-in", () => {
  let gh: GithubStandin;
  const asset = bytes(50_000, 21);
  beforeAll(async () => {
    gh = await startGithubStandin({ validTokens: ["ghp_good"] });
    await gh.addRelease("acme/models", "v1", { "tiny.gguf": asset });
    await gh.addRelease("acme/secret", "v1", { "tiny.gguf": asset }, { private: true });
  });
  afterAll(() => gh.close());

  const dl = (repo: string, tag: string, name: string) => `${gh.url}/${repo}/releases/download/${tag}/${name}`;

  it("302s downloads to an asset host on another port that serves ranges", async () => {
    const r = await fetch(dl("acme/models", "v1", "tiny.gguf"), { redirect: "manual" });
    expect(r.status).toBe(302);
    const loc = r.headers.get("location")!;
    expect(new URL(loc).origin).toBe(gh.assetsUrl);
    expect(new URL(loc).port).not.toBe(new URL(gh.url).port);
    expect(loc).toContain("X-Amz-Signature=");
    let a = await fetch(loc);
    expect(a.status).toBe(200);
    expect(a.headers.get("accept-ranges")).toBe("bytes");
    expectBytes(await a.arrayBuffer(), asset);
    a = await fetch(loc, { headers: { range: "bytes=49990-" } });
    expect(a.status).toBe(206);
    expectBytes(await a.arrayBuffer(), asset.subarray(49_990));
    a = await fetch(loc, { headers: { range: "bytes=50000-" } });
    expect(a.status).toBe(416);
    expect(gh.bytesServed("acme/models", "tiny.gguf")).toBe(50_010);
  });

  it("404 for a missing repo, tag or asset; 401 for a private repo without a valid token", async () => {
    for (const u of [dl("acme/nope", "v1", "tiny.gguf"), dl("acme/models", "v9", "tiny.gguf"), dl("acme/models", "v1", "nope.gguf")]) {
      const r = await fetch(u, { redirect: "manual" });
      expect(r.status, u).toBe(404);
      await r.arrayBuffer();
    }
    expect((await fetch(dl("acme/secret", "v1", "tiny.gguf"), { redirect: "manual" })).status).toBe(401);
    expect((await fetch(dl("acme/secret", "v1", "tiny.gguf"), { redirect: "manual", headers: { authorization: "Bearer wrong" } })).status).toBe(401);
    gh.clearLog();
    for (const scheme of ["Bearer", "token"]) {
      const r = await fetch(dl("acme/secret", "v1", "tiny.gguf"), { headers: { authorization: `${scheme} ghp_good` } });
      expect(r.status).toBe(200);
      expectBytes(await r.arrayBuffer(), asset);
    }
    // The token reached github, never the asset host.
    expect(gh.requests.filter((e) => e.host === "github").every((e) => e.headers.authorization !== undefined)).toBe(true);
    expect(gh.requests.filter((e) => e.host === "assets")).toHaveLength(2);
    expect(gh.requests.filter((e) => e.host === "assets").every((e) => e.headers.authorization === undefined)).toBe(true);
  });

  it("the asset host rejects a forwarded Authorization header like S3 does (400)", async () => {
    const loc = (await fetch(dl("acme/models", "v1", "tiny.gguf"), { redirect: "manual" })).headers.get("location")!;
    const r = await fetch(loc, { headers: { authorization: "Bearer ghp_good" } });
    expect(r.status).toBe(400);
    expect(await r.text()).toContain("InvalidArgument");
  });

  it("release API lists assets with sha256 digests", async () => {
    const r = await fetch(`${gh.url}/repos/acme/models/releases/tags/v1`);
    const rel = (await json(r)) as { tag_name: string; assets: { name: string; size: number; digest: string; browser_download_url: string }[] };
    expect(rel.tag_name).toBe("v1");
    expect(rel.assets[0]).toMatchObject({ name: "tiny.gguf", size: 50_000, digest: `sha256:${sha256(asset)}` });
    expect(rel.assets[0]!.browser_download_url).toBe(dl("acme/models", "v1", "tiny.gguf"));
  });
});

// ---------- router ----------

describe("router stand-in", () => {
  let router: RouterStandin;
  const blob = bytes(40_000, 33);
  const auth = { authorization: "Bearer sk-router" };
  beforeAll(async () => {
    router = await startRouterStandin({ apiKey: "sk-router" });
    await router.addModel("org/repo/tiny.gguf", blob);
  });
  afterAll(() => router.close());
  const blobUrl = (id: string) => `${router.url}/v0/models/blob/${encodeURIComponent(id)}`;

  it("lists models and serves blobs with ETag, ranges and HEAD", async () => {
    const list = (await json(await fetch(`${router.url}/v0/models`, { headers: auth }))) as { models: unknown[] };
    expect(list.models).toEqual([{ id: "org/repo/tiny.gguf", size_bytes: 40_000, sha256: sha256(blob) }]);
    let r = await fetch(blobUrl("org/repo/tiny.gguf"), { headers: auth });
    expect(r.status).toBe(200);
    expect(r.headers.get("etag")).toBe(`"${sha256(blob)}"`);
    expect(r.headers.get("accept-ranges")).toBe("bytes");
    expect(r.headers.get("content-length")).toBe("40000");
    expectBytes(await r.arrayBuffer(), blob);
    r = await fetch(blobUrl("org/repo/tiny.gguf"), { headers: { ...auth, range: "bytes=39000-" } });
    expect(r.status).toBe(206);
    expect(r.headers.get("content-range")).toBe("bytes 39000-39999/40000");
    expectBytes(await r.arrayBuffer(), blob.subarray(39_000));
    r = await fetch(blobUrl("org/repo/tiny.gguf"), { headers: { ...auth, range: "bytes=40000-" } });
    expect(r.status).toBe(416);
    r = await fetch(blobUrl("org/repo/tiny.gguf"), { method: "HEAD", headers: auth });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-length")).toBe("40000");
    expect(router.bytesServed("org/repo/tiny.gguf")).toBe(41_000);
  });

  it("404 JSON for unknown ids, 401 without the API key, faults and down", async () => {
    let r = await fetch(blobUrl("nope"), { headers: auth });
    expect(r.status).toBe(404);
    expect(((await json(r)) as { error: { code: string } }).error.code).toBe("model_not_found");
    r = await fetch(blobUrl("org/repo/tiny.gguf"));
    expect(r.status).toBe(401);
    expect(((await json(r)) as { error: { type: string } }).error.type).toBe("authentication_error");
    expect((await fetch(blobUrl("org/repo/tiny.gguf"), { headers: { authorization: "Bearer nope" } })).status).toBe(401);
    router.dropAt(1234, { path: "org/repo/tiny.gguf" });
    const raw = await rawGet(blobUrl("org/repo/tiny.gguf"), auth);
    expect(raw.body.byteLength).toBe(1234);
    expect(raw.complete).toBe(false);
    await router.down();
    await expect(fetch(`${router.url}/v0/models`, { headers: auth })).rejects.toThrow();
    await router.up();
    expect((await fetch(`${router.url}/v0/models`, { headers: auth })).status).toBe(200);
  });
});

describe("router stand-in, push era", () => {
  let router: RouterStandin;
  let nodeApi: Server;
  let nodePort = 0;
  beforeAll(async () => {
    router = await startRouterStandin({ apiKey: "sk-router" });
    // A minimal node API: the router reads /v1/models before it answers a registration.
    nodeApi = createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ data: [{ id: "m1" }], ready_models: [1, 1] })));
    await new Promise<void>((resolve) => nodeApi.listen(0, "127.0.0.1", resolve));
    nodePort = (nodeApi.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await router.close();
    await new Promise((resolve) => nodeApi.close(resolve));
  });
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${router.url}${path}`, { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer sk-router", ...headers }, body: JSON.stringify(body) });
  const registration = (gpu: boolean) => ({
    machine_name: "m", ip_address: "127.0.0.1", runtime_version: "0.1.0", runtime_port: nodePort - 1,
    gpu_available: gpu, gpu_devices: gpu ? [{ model: "RTX", count: 1, memory: 1024 }] : [], gpu_count: gpu ? 1 : 0, gpu_model: gpu ? "RTX" : null, supported_runtimes: ["llama_cpp"],
  });

  it("403 without a GPU, 201 then 200 with a new token, reading the node's /v1/models", async () => {
    const refused = await post("/v0/nodes", registration(false));
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: string }).error).toContain("GPU is required");
    const first = await post("/v0/nodes", registration(true));
    expect(first.status).toBe(201);
    const a = (await first.json()) as { node_id: string; node_token: string; status: string };
    expect(a.status).toBe("registered");
    expect(router.nodes.get(a.node_id)).toMatchObject({ modelIds: ["m1"], readyModels: [1, 1] });
    const again = await post("/v0/nodes", registration(true));
    expect(again.status).toBe(200);
    const b = (await again.json()) as { node_id: string; node_token: string; status: string };
    expect(b).toMatchObject({ node_id: a.node_id, status: "updated" });
    expect(b.node_token).not.toBe(a.node_token);
    expect((await post("/v0/nodes", { ...registration(true), runtime_port: "8079" })).status).toBe(400);
    expect(router.registrations.at(-1)!.problems).toEqual(['runtime_port is "8079"']);
  });

  it("heartbeat: 401 without the key or the token, 404 for an unknown node, 400 naming a wrong field", async () => {
    const { node_id, node_token } = (await (await post("/v0/nodes", registration(true))).json()) as { node_id: string; node_token: string };
    const beat = { node_id, cpu_usage: 5, memory_usage: 40, active_requests: 0 };
    expect((await post("/v0/health", beat)).status).toBe(401);
    expect((await post("/v0/health", beat, { "x-node-token": node_token, authorization: "Bearer nope" })).status).toBe(401);
    expect((await post("/v0/health", beat, { "x-node-token": "nt_other" })).status).toBe(401);
    expect((await post("/v0/health", { ...beat, node_id: "unknown" }, { "x-node-token": node_token })).status).toBe(404);
    expect((await post("/v0/health", { ...beat, cpu_usage: 250 }, { "x-node-token": node_token })).status).toBe(400);
    expect(router.heartbeats.at(-1)!.problems).toContain("cpu_usage is 250");
    router.forgetNode(node_id);
    expect((await post("/v0/health", beat, { "x-node-token": node_token })).status).toBe(404);
  });
});
