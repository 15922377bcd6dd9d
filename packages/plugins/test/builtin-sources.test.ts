import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "undici";
import { loadConfig, silentLogger, type ArtifactSpec, type LocateResult, type ModelEntry, type SourceContext, type SourceProvider } from "@llmlb/runtime";
import localPlugin from "../src/local/index.js";
import routerPlugin, { blobUrl } from "../src/router-proxy/index.js";
import { expandShards } from "../src/huggingface/index.js";
import { builtinSourceDefaults } from "../src/index.js";
import { tempDir } from "../../../testkit/node/index.js";
import { startRouterStandin, type RouterStandin } from "../../../testkit/standins/index.js";

const model = (over: Partial<ModelEntry> = {}): ModelEntry => ({
  id: "org/tiny", displayName: "tiny", description: "", repo: "Org/Tiny-GGUF", files: ["tiny-Q4_K_M.gguf"],
  tags: [], capabilities: ["text-generation"], format: "gguf", origin: "supported", ...over,
});

const spec = (over: Partial<ModelEntry> = {}, pinnedRevision?: string): ArtifactSpec => ({
  kind: "model", id: over.id ?? "org/tiny", model: model(over), ...(pinnedRevision ? { pinnedRevision } : {}),
});

const MODULES = new Map<unknown, string>([
  [localPlugin, "@llmlb/plugins/local"],
  [routerPlugin, "@llmlb/plugins/router-proxy"],
]);

/** Builds a provider from a plugin module the way a node does, with the given environment. */
async function provider(plugin: unknown, env: Record<string, string>, options: Record<string, unknown> = {}): Promise<SourceProvider> {
  const config = loadConfig({ env: { LLMLB_HOME: "/nonexistent-llmlb-home", ...env } });
  const defaults = builtinSourceDefaults(config).optionsFor?.(MODULES.get(plugin)!);
  return typeof plugin === "function" ? plugin({ options: { ...defaults, ...options }, logger: silentLogger() }) : (plugin as SourceProvider);
}

/** What the runtime hands a provider; the stand-ins are on loopback, so the global fetch does. */
function context(dispatcher: Agent): SourceContext {
  return { options: {}, logger: silentLogger(), fetch: globalThis.fetch, dispatcher, signal: new AbortController().signal };
}

describe("expandShards", () => {
  it("turns the first part of a sharded GGUF into every part, in order", () => {
    expect(expandShards(["m-00001-of-00003.gguf"])).toEqual(["m-00001-of-00003.gguf", "m-00002-of-00003.gguf", "m-00003-of-00003.gguf"]);
    expect(expandShards(["Q4/m-00001-of-00002.gguf"])).toEqual(["Q4/m-00001-of-00002.gguf", "Q4/m-00002-of-00002.gguf"]);
    expect(expandShards(["m.gguf"])).toEqual(["m.gguf"]);
    expect(expandShards(["m-00002-of-00003.gguf"])).toEqual(["m-00002-of-00003.gguf"]);
    expect(expandShards(["a.gguf", "b.gguf"])).toEqual(["a.gguf", "b.gguf"]);
  });
});

describe("local source", () => {
  const http = new Agent();
  const ctx = context(http);
  let dirs: { dir: string; cleanup: () => void };
  beforeAll(() => {
    dirs = tempDir("llmlb-local-src-");
  });
  afterAll(async () => {
    dirs.cleanup();
    await http.close();
  });

  const file = (...parts: string[]) => {
    const p = path.join(dirs.dir, ...parts);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, parts.join("/"));
    return p;
  };

  it("says not-here without extra directories", async () => {
    const local = await provider(localPlugin, {});
    expect(await local.locate(spec(), ctx)).toMatchObject({ type: "not-here", code: "NOT_HERE" });
  });

  it("finds a model flat, in a directory named by id or by org/repo, and in a Hugging Face cache at the pinned commit", async () => {
    const flat = file("flat", "tiny-Q4_K_M.gguf");
    const byId = file("by-id", "org%2Ftiny", "tiny-Q4_K_M.gguf");
    const byRepo = file("by-repo", "Org", "Tiny-GGUF", "tiny-Q4_K_M.gguf");
    const old = "a".repeat(40);
    const latest = "b".repeat(40);
    const cachedOld = file("hf", "hub", "models--Org--Tiny-GGUF", "snapshots", old, "tiny-Q4_K_M.gguf");
    const cachedLatest = file("hf", "hub", "models--Org--Tiny-GGUF", "snapshots", latest, "tiny-Q4_K_M.gguf");
    file("hf", "hub", "models--Org--Tiny-GGUF", "refs", "main");
    fs.writeFileSync(path.join(dirs.dir, "hf", "hub", "models--Org--Tiny-GGUF", "refs", "main"), latest);
    const at = async (dir: string, s: ArtifactSpec) => (await (await provider(localPlugin, { LLMLB_EXTRA_MODEL_DIRS: path.join(dirs.dir, dir) })).locate(s, ctx)) as LocateResult;
    expect(await at("flat", spec())).toEqual({ type: "local", files: [flat] });
    expect(await at("by-id", spec())).toEqual({ type: "local", files: [byId] });
    expect(await at("by-repo", spec())).toEqual({ type: "local", files: [byRepo] });
    expect(await at("hf", spec({ revision: "main" }))).toEqual({ type: "local", files: [cachedLatest], revision: latest });
    expect(await at("hf", spec({}, old))).toEqual({ type: "local", files: [cachedOld], revision: old });
    expect(await at("hf", spec({ files: ["other.gguf"] }))).toMatchObject({ type: "not-here" });
  });

  it("needs every part of a sharded model", async () => {
    file("shards", "s-00001-of-00002.gguf");
    const local = await provider(localPlugin, { LLMLB_EXTRA_MODEL_DIRS: path.join(dirs.dir, "shards") });
    expect(await local.locate(spec({ files: ["s-00001-of-00002.gguf"] }), ctx)).toMatchObject({ type: "not-here" });
    const second = file("shards", "s-00002-of-00002.gguf");
    expect(await local.locate(spec({ files: ["s-00001-of-00002.gguf"] }), ctx)).toMatchObject({ type: "local", files: [expect.any(String), second] });
  });
});

describe("router-proxy source", () => {
  const http = new Agent();
  const ctx = context(http);
  let router: RouterStandin;
  beforeAll(async () => {
    router = await startRouterStandin({ apiKey: "k" });
    await router.addModel("org/tiny", new Uint8Array(1000).fill(7));
  });
  afterAll(async () => {
    await router?.close();
    await http.close();
  });

  it("encodes the id as one segment", () => {
    expect(blobUrl("http://r:1/", "org/tiny")).toBe("http://r:1/v0/models/blob/org%2Ftiny");
    expect(blobUrl("http://r:1", "org/tiny", "p-00002-of-00002.gguf")).toBe("http://r:1/v0/models/blob/org%2Ftiny/p-00002-of-00002.gguf");
  });

  it("says not-here without routers or when no router has it, and locates size, sha256 and the key header", async () => {
    expect(await (await provider(routerPlugin, {})).locate(spec(), ctx)).toMatchObject({ type: "not-here", code: "NOT_CONFIGURED" });
    const configured = await provider(routerPlugin, { LLMLB_ROUTER_URL: router.url, LLMLB_ROUTER_API_KEY: "k" });
    expect(await configured.locate(spec({ id: "org/other" }), ctx)).toMatchObject({ type: "not-here" });
    const found = await configured.locate(spec(), ctx);
    expect(found).toMatchObject({
      type: "remote",
      files: [{ name: "tiny-Q4_K_M.gguf", url: `${router.url}/v0/models/blob/org%2Ftiny`, size: 1000, headers: { authorization: "Bearer k" } }],
    });
    expect((found as Extract<LocateResult, { type: "remote" }>).files[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("reads the manifest and blobs under /api/models, with the key, from a router that serves only those", async () => {
    const apiOnly = await startRouterStandin({ apiKey: "k", realRouter: true, apiOnly: true });
    try {
      await apiOnly.addModel("org/tiny", new Uint8Array(1000).fill(7));
      const p = await provider(routerPlugin, { LLMLB_ROUTER_URL: apiOnly.url, LLMLB_ROUTER_API_KEY: "k" });
      expect(await p.locate(spec(), ctx)).toMatchObject({
        type: "remote",
        files: [{ name: "tiny-Q4_K_M.gguf", url: `${apiOnly.url}/api/models/blob/org%2Ftiny`, size: 1000, headers: { authorization: "Bearer k" } }],
      });
      apiOnly.setManifest("org/tiny", {
        format: "gguf",
        files: [
          { name: "tiny.safetensors", runtimes: ["gptoss_cpp"], url: "http://127.0.0.1:9/x.safetensors" },
          { name: "tiny.gguf", runtimes: ["llama_cpp"], url: "http://127.0.0.1:9/tiny.gguf" },
        ],
      });
      const viaManifest = await p.locate(spec(), ctx);
      // The manifest's URL is unreachable: the one llama_cpp file comes through the router, under the catalog's name.
      expect(viaManifest).toMatchObject({ type: "remote", files: [{ name: "tiny-Q4_K_M.gguf", url: `${apiOnly.url}/api/models/blob/org%2Ftiny` }] });
      expect((viaManifest as Extract<LocateResult, { type: "remote" }>).files).toHaveLength(1);
      expect(apiOnly.requests.some((r) => r.path === "/api/models/registry/org%2Ftiny/manifest.json")).toBe(true);
      apiOnly.setManifest("org/tiny", { format: "gguf", files: [{ name: "tiny.safetensors", runtimes: ["gptoss_cpp"] }] });
      await expect(p.locate(spec(), ctx)).rejects.toMatchObject({ reason: "SOURCE_UNAVAILABLE", message: expect.stringContaining("no file for llama_cpp") });
    } finally {
      await apiOnly.close();
    }
  });

  it("asks for the key when the router refuses", async () => {
    const keyless = await provider(routerPlugin, { LLMLB_ROUTER_URL: router.url });
    await expect(keyless.locate(spec(), ctx)).rejects.toMatchObject({ reason: "AUTH_REQUIRED", message: expect.stringMatching(/; set LLMLB_ROUTER_API_KEY$/) });
    // With a key the router refuses, the way out is to check that key, not to set one.
    const wrongKey = await provider(routerPlugin, { LLMLB_ROUTER_URL: router.url, LLMLB_ROUTER_API_KEY: "not-the-key" });
    await expect(wrongKey.locate(spec(), ctx)).rejects.toMatchObject({ reason: "AUTH_REQUIRED", message: expect.stringContaining("the key in LLMLB_ROUTER_API_KEY was refused") });
  });
});
