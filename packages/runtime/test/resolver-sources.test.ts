import fs from "node:fs";
import path from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHfStandin, startRouterStandin, type HfStandin, type RouterStandin } from "../../../testkit/standins/index.js";
import { tinyLoraBytes } from "../../../testkit/gguf/tiny-gguf.js";
import { tempDir } from "../../../testkit/node/index.js";
import { entry, failure, openStack, payload, recorder, sha256 } from "./resolver-world.js";

const HF_TOKEN = "hf_only_for_the_hub";
const ROUTER_KEY = "router-key";
const DATA = payload(300_000, 31);
const SHA = sha256(DATA);

describe("the source chain", () => {
  let hf: HfStandin;
  let router: RouterStandin;
  beforeAll(async () => {
    hf = await startHfStandin();
    await hf.addRepo("org/repo", { files: { "m.gguf": DATA } });
    router = await startRouterStandin({ apiKey: ROUTER_KEY });
    await router.addModel("routed", DATA);
  });
  afterAll(async () => {
    await hf?.close();
    await router?.close();
  });

  const env = () => ({ HF_ENDPOINT: hf.url, HF_TOKEN, LLMLB_ROUTER_URL: router.url, LLMLB_ROUTER_API_KEY: ROUTER_KEY });
  /** Every header value any stand-in received. */
  const allHeaders = () => [...hf.requests, ...router.requests].flatMap((r) => Object.values(r.headers).map((v) => [r.host, v] as const));

  it("falls back to the router when Hugging Face is down; HF_TOKEN is seen by no other host", async () => {
    const stack = await openStack({ env: env(), models: [entry("routed", "org/repo", "m.gguf")] });
    await hf.down({ mode: "refused" });
    hf.clearLog();
    router.clearLog();
    try {
      const rec = recorder();
      const result = await stack.resolver.resolve({ modelId: "routed" }, { onEvent: rec.onEvent });
      expect(result).toMatchObject({ source: "router-proxy", sha256: SHA, sizeBytes: DATA.length });
      expect(rec.events.filter((e) => e.type !== "progress")).toEqual([
        { type: "source-tried", source: "local" },
        expect.objectContaining({ type: "source-failed", source: "local", code: "NOT_HERE" }),
        { type: "source-tried", source: "huggingface" },
        expect.objectContaining({ type: "source-failed", source: "huggingface", code: "SOURCE_UNAVAILABLE" }),
        { type: "source-tried", source: "router-proxy" },
      ]);
      expect(router.requests.length).toBeGreaterThan(0);
      expect(router.requests.every((r) => r.headers.authorization === `Bearer ${ROUTER_KEY}`)).toBe(true);
      expect(allHeaders().filter(([, v]) => v.includes(HF_TOKEN))).toEqual([]);
      expect(router.bytesServed("routed")).toBe(DATA.length);
      expect((await stack.store.getModel("routed"))?.source).toBe("router-proxy");
    } finally {
      await hf.up();
      await stack.dispose();
    }
  });

  it("falls back to the router when the hub answers but its CDN is down; the token stays at the hub", async () => {
    const stack = await openStack({ env: { ...env(), LLMLB_DOWNLOAD_RETRIES: "1" }, models: [entry("routed", "org/repo", "m.gguf")] });
    await hf.down({ mode: "refused", host: "cdn" });
    hf.clearLog();
    try {
      expect(await stack.resolver.resolve({ modelId: "routed" })).toMatchObject({ source: "router-proxy", sha256: SHA });
      const hub = hf.requests.filter((r) => r.host === "hub");
      expect(hub.length).toBeGreaterThan(0);
      expect(hub.every((r) => r.headers.authorization === `Bearer ${HF_TOKEN}`)).toBe(true);
      expect(allHeaders().filter(([host, v]) => v.includes(HF_TOKEN) && host !== "hub")).toEqual([]);
    } finally {
      await hf.up();
      await stack.dispose();
    }
  });

  it("lists every source's reason when all fail", async () => {
    const stack = await openStack({ env: env(), models: [entry("nowhere", "org/none", "x.gguf")] });
    try {
      const err = await failure(stack.resolver.resolve({ modelId: "nowhere" }));
      // HF really failed, the router simply does not have it: the hub's error is the answer.
      expect(err).toMatchObject({ code: Code.NotFound, reason: "REPO_NOT_FOUND" });
      // Each source is named once, before its own reason.
      expect(err.message).toMatch(/\(other sources: local: not in the store[^;]*; router-proxy: http:\/\/127\.0\.0\.1:\d+ does not have it\)$/);
      expect(err.message).not.toMatch(/(local|router-proxy): \1:/);
      await router.down({ mode: "503" });
      const both = await failure(stack.resolver.resolve({ modelId: "nowhere" }));
      expect(both).toMatchObject({ code: Code.Unavailable, reason: "ALL_SOURCES_FAILED" });
      expect(both.message).toMatch(/huggingface: repository org\/none does not exist.*router-proxy: no router could serve nowhere/);
      expect(JSON.parse(both.metadata.sources!)).toEqual([
        expect.objectContaining({ source: "local", code: "NOT_HERE", reason: expect.stringMatching(/^not in the store/) }),
        expect.objectContaining({ source: "huggingface", code: "REPO_NOT_FOUND" }),
        expect.objectContaining({ source: "router-proxy", code: "SOURCE_UNAVAILABLE" }),
      ]);
    } finally {
      await router.up();
      await stack.dispose();
    }
  });

  it("reports a plugin that throws, hangs or answers nonsense by name, and goes on", async () => {
    const { dir: home, cleanup } = tempDir("llmlb-plugins-");
    const plugin = (name: string, body: string) =>
      fs.writeFileSync(path.join(home, `${name}.mjs`), `export default { name: "${name}", priority: 1, kinds: ["model"], async locate(spec, ctx) { ${body} } };\n`);
    plugin("thrower", `throw new Error("disk on fire");`);
    plugin("sleeper", `await new Promise(() => {});`);
    plugin("liar", `return { type: "remote", files: [{ name: "../../escape.gguf", url: "http://127.0.0.1:1/x" }] };`);
    plugin("mirrorliar", `return { type: "remote", files: [{ name: "m.gguf", url: "http://127.0.0.1:1/x", mirrors: [{ url: "file:///etc/passwd" }] }] };`);
    fs.writeFileSync(path.join(home, "config.json"), JSON.stringify({
      sources: [
        { module: "./thrower.mjs", priority: 1 },
        { module: "./sleeper.mjs", priority: 2 },
        { module: "./liar.mjs", priority: 3 },
        { module: "./mirrorliar.mjs", priority: 4 },
        { module: "@llmlb/plugins/local", enabled: false },
        { module: "@llmlb/plugins/huggingface", priority: 40, options: { endpoint: hf.url } },
      ],
    }));
    const stack = await openStack({ home, env: { LLMLB_PLUGIN_TIMEOUT: "1" }, models: [entry("m", "org/repo", "m.gguf")] });
    try {
      expect(stack.sources.sources.map((s) => [s.name, s.priority, s.enabled, s.module])).toEqual([
        ["@llmlb/plugins/local", 0, false, "@llmlb/plugins/local"],
        ["thrower", 1, true, "./thrower.mjs"],
        ["sleeper", 2, true, "./sleeper.mjs"],
        ["liar", 3, true, "./liar.mjs"],
        ["mirrorliar", 4, true, "./mirrorliar.mjs"],
        ["huggingface", 40, true, "@llmlb/plugins/huggingface"],
      ]);
      const rec = recorder();
      expect(await stack.resolver.resolve({ modelId: "m" }, { onEvent: rec.onEvent })).toMatchObject({ source: "huggingface", sha256: SHA });
      const failed = rec.events.filter((e) => e.type === "source-failed");
      expect(failed).toEqual([
        expect.objectContaining({ source: "thrower", code: "SOURCE_ERROR", reason: expect.stringContaining("disk on fire") }),
        expect.objectContaining({ source: "sleeper", code: "PLUGIN_TIMEOUT", reason: expect.stringContaining("within 1 s") }),
        expect.objectContaining({ source: "liar", code: "PLUGIN_INVALID_RESULT", reason: expect.stringContaining("files[0].name") }),
        expect.objectContaining({ source: "mirrorliar", code: "PLUGIN_INVALID_RESULT", reason: expect.stringContaining("files[0].mirrors[0].url must be an http(s) URL") }),
      ]);
      expect(fs.existsSync(path.join(home, "..", "escape.gguf"))).toBe(false);
    } finally {
      await stack.dispose();
      cleanup();
    }
  });

  it("uses a model found in a read-only Hugging Face cache in place, without any request", async () => {
    const cache = tempDir("llmlb-hfcache-");
    const commit = "c".repeat(40);
    const repoDir = path.join(cache.dir, "hub", "models--org--cached-GGUF");
    fs.mkdirSync(path.join(repoDir, "blobs"), { recursive: true });
    fs.mkdirSync(path.join(repoDir, "snapshots", commit), { recursive: true });
    fs.mkdirSync(path.join(repoDir, "refs"), { recursive: true });
    fs.writeFileSync(path.join(repoDir, "blobs", SHA), DATA);
    fs.symlinkSync(path.join("..", "..", "blobs", SHA), path.join(repoDir, "snapshots", commit, "m.gguf"));
    fs.writeFileSync(path.join(repoDir, "refs", "main"), commit);
    const stack = await openStack({
      env: { ...env(), LLMLB_EXTRA_MODEL_DIRS: cache.dir },
      models: [entry("cached", "org/cached-GGUF", "m.gguf", { sha256: SHA }), entry("wrong", "org/cached-GGUF", "m.gguf", { sha256: "0".repeat(64) })],
    });
    hf.clearLog();
    try {
      const result = await stack.resolver.resolve({ modelId: "cached" });
      expect(result).toMatchObject({ source: "local", sha256: SHA, revision: commit, sizeBytes: DATA.length });
      expect(result.path).toBe(path.join(repoDir, "snapshots", commit, "m.gguf"));
      expect(hf.requests).toEqual([]);
      expect(await stack.store.listModels()).toEqual([]);
      // A cached file that is not what the catalog expects is not used.
      const err = await failure(stack.resolver.resolve({ modelId: "wrong" }));
      expect(JSON.parse(err.metadata.sources!)[0]).toMatchObject({ source: "local", code: "CHECKSUM_MISMATCH" });
      // A blob is never trusted by its name: bytes that differ from the sha256 it is named by are refused.
      fs.rmSync(path.join(repoDir, "blobs", SHA));
      fs.writeFileSync(path.join(repoDir, "blobs", SHA), payload(DATA.length, 77));
      const renamed = await failure(stack.resolver.resolve({ modelId: "cached" }));
      expect(JSON.parse(renamed.metadata.sources!)[0]).toMatchObject({ source: "local", code: "CHECKSUM_MISMATCH" });
    } finally {
      await stack.dispose();
      cache.cleanup();
    }
  });

  it("resolves a local adapter path in place", async () => {
    const dir = tempDir("llmlb-adapter-");
    const file = path.join(dir.dir, "style.gguf");
    fs.writeFileSync(file, tinyLoraBytes());
    const stack = await openStack({ env: env() });
    try {
      const other = path.join(dir.dir, "sub", "style.gguf");
      fs.mkdirSync(path.dirname(other));
      fs.writeFileSync(other, tinyLoraBytes({ seed: 99 }));
      const [first, second] = await Promise.all([stack.resolver.resolve({ adapterRef: file }), stack.resolver.resolve({ adapterRef: other })]);
      expect(first).toMatchObject({ kind: "adapter", id: expect.stringMatching(/^local--[0-9a-f]{8}--style\.gguf$/), source: "local", path: file });
      expect(second).toMatchObject({ source: "local", path: other });
      expect(second.id).not.toBe(first.id);
      const missing = await failure(stack.resolver.resolve({ adapterRef: path.join(dir.dir, "missing.gguf") }));
      expect(missing).toMatchObject({ code: Code.NotFound, reason: "ADAPTER_NOT_FOUND" });
    } finally {
      await stack.dispose();
      dir.cleanup();
    }
  });
});
