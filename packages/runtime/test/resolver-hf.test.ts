import fs from "node:fs";
import path from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHfStandin, type HfStandin } from "../../../testkit/standins/index.js";
import { tempDir } from "../../../testkit/node/index.js";
import { tinyLoraBytes } from "../../../testkit/gguf/tiny-gguf.js";
import { TINY, TINY_INFO, captureLogger, entry, failure, listTree, openStack, payload, recorder, sha256 } from "./resolver-world.js";

const REPO = "org/tiny-GGUF";
const SHARDED = "org/sharded-GGUF";
const GATED = "org/gated-GGUF";
const PRIVATE = "org/private-GGUF";
const DISABLED = "org/disabled-GGUF";
const TOKEN = "hf_secret_token";
/** Each part of a sharded GGUF is a GGUF file of its own. */
const SHARDS = [payload(300_000, 51), payload(300_000, 52), payload(278_560, 53)];
const LORA = tinyLoraBytes();

describe("resolving from the Hugging Face stand-in", () => {
  let hf: HfStandin;
  beforeAll(async () => {
    hf = await startHfStandin({ validTokens: [TOKEN, "hf_other"] });
    await hf.addRepo(REPO, { files: { "tiny-Q4_K_M.gguf": TINY, "lora.gguf": LORA, "README.md": new TextEncoder().encode("# tiny\n") } });
    await hf.addRepo(SHARDED, {
      files: Object.fromEntries(SHARDS.map((data, i) => [`Q4_K_M/tiny-Q4_K_M-0000${i + 1}-of-00003.gguf`, data])),
    });
    await hf.addRepo(GATED, { files: { "g.gguf": TINY }, gated: "manual" });
    await hf.addRepo(PRIVATE, { files: { "p.gguf": TINY }, private: true });
    await hf.addRepo(DISABLED, { files: { "d.gguf": TINY }, disabled: true });
  });
  afterAll(async () => hf?.close());

  it("downloads, verifies and installs a model, then answers from the store; HF_TOKEN only reaches the hub", async () => {
    const stack = await openStack({ env: { HF_ENDPOINT: hf.url, HF_TOKEN: TOKEN }, models: [entry("tiny", REPO, "tiny-Q4_K_M.gguf", { sha256: TINY_INFO.sha256 })] });
    hf.clearLog();
    try {
      const rec = recorder();
      const result = await stack.resolver.resolve({ modelId: "tiny" }, { onEvent: rec.onEvent });
      expect(result).toMatchObject({ id: "tiny", source: "huggingface", sizeBytes: TINY_INFO.size, sha256: TINY_INFO.sha256, revision: hf.commitOf(REPO) });
      expect(result.path).toBe(path.join(stack.home, "models", "tiny", "tiny-Q4_K_M.gguf"));
      expect(sha256(fs.readFileSync(result.path))).toBe(TINY_INFO.sha256);
      expect(rec.events.filter((e) => e.type === "source-tried").map((e) => e.type === "source-tried" && e.source)).toEqual(["local", "huggingface"]);
      expect(rec.events.at(-1)).toMatchObject({ type: "progress", progress: { fraction: 1, completedBytes: TINY_INFO.size, totalBytes: TINY_INFO.size } });

      const hub = hf.requests.filter((r) => r.host === "hub");
      const cdn = hf.requests.filter((r) => r.host === "cdn");
      expect(hub.length).toBeGreaterThan(0);
      expect(cdn.length).toBeGreaterThan(0);
      expect(hub.every((r) => r.headers.authorization === `Bearer ${TOKEN}`)).toBe(true);
      expect(cdn.every((r) => r.headers.authorization === undefined)).toBe(true);
      expect(hf.bytesServed(REPO, "tiny-Q4_K_M.gguf")).toBe(TINY_INFO.size);

      hf.clearLog();
      expect(await stack.resolver.resolve({ modelId: "tiny" })).toMatchObject({ source: "local", path: result.path });
      expect(hf.requests).toEqual([]);
    } finally {
      await stack.dispose();
    }
  });

  it("stays pinned to the installed commit: no re-download when the repo moves on, repairs fetch the same commit", async () => {
    const repo = "org/moving-GGUF";
    const v1 = payload(50_000, 11);
    await hf.addRepo(repo, { files: { "m.gguf": v1 } });
    const first = hf.commitOf(repo)!;
    const stack = await openStack({ env: { HF_ENDPOINT: hf.url }, models: [entry("moving", repo, "m.gguf")] });
    try {
      const installed = await stack.resolver.resolve({ modelId: "moving" });
      expect(installed.revision).toBe(first);
      await hf.pushCommit(repo, { "m.gguf": payload(60_000, 12) });
      expect(hf.commitOf(repo)).not.toBe(first);
      hf.clearLog();
      expect(await stack.resolver.resolve({ modelId: "moving" })).toMatchObject({ source: "local", revision: first, sha256: sha256(v1) });
      expect(hf.requests).toEqual([]);

      fs.rmSync(installed.path); // damaged copy: metadata.json still names the commit
      const repaired = await stack.resolver.resolve({ modelId: "moving" });
      expect(repaired).toMatchObject({ source: "huggingface", revision: first, sha256: sha256(v1) });
      expect(hf.requests.filter((r) => r.host === "hub").every((r) => r.path.includes(`/resolve/${first}/`))).toBe(true);
    } finally {
      await stack.dispose();
    }
  });

  it("fetches every part of a sharded GGUF into one directory and returns the first part", async () => {
    const stack = await openStack({ env: { HF_ENDPOINT: hf.url }, models: [entry("org/sharded", SHARDED, "Q4_K_M/tiny-Q4_K_M-00001-of-00003.gguf")] });
    try {
      const result = await stack.resolver.resolve({ modelId: "org/sharded" });
      const dir = path.join(stack.home, "models", "org%2Fsharded");
      expect(result.files).toEqual([1, 2, 3].map((i) => path.join(dir, `tiny-Q4_K_M-0000${i}-of-00003.gguf`)));
      expect(result.path).toBe(result.files[0]);
      expect(result.sizeBytes).toBe(TINY_INFO.size);
      expect(result.files.map((f) => sha256(fs.readFileSync(f)))).toEqual(SHARDS.map((s) => sha256(s)));
      expect((await stack.store.getModel("org/sharded"))?.files.map((f) => f.sha256)).toEqual(SHARDS.map((s) => sha256(s)));
    } finally {
      await stack.dispose();
    }
  });

  it("logs a line at every 10% of a download", async () => {
    const repo = "org/ten-MiB";
    await hf.addRepo(repo, { files: { "big.gguf": payload(10 << 20, 3) } });
    const { logger, lines } = captureLogger();
    const stack = await openStack({ env: { HF_ENDPOINT: hf.url, LLMLB_DOWNLOAD_CONNECTIONS: "1" }, models: [entry("ten", repo, "big.gguf")], logger });
    try {
      await stack.resolver.resolve({ modelId: "ten" });
      const steps = lines.map((l) => /downloading model ten: (\d+)%/.exec(String(l.msg))?.[1]).filter(Boolean).map(Number);
      expect(steps).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    } finally {
      await stack.dispose();
    }
  });

  it("downloads hf: adapters into <home>/adapters/<id>/", async () => {
    const stack = await openStack({ env: { HF_ENDPOINT: hf.url } });
    try {
      const result = await stack.resolver.resolve({ adapterRef: `hf:${REPO}/lora.gguf` });
      expect(result).toMatchObject({ kind: "adapter", id: "hf--org--tiny-GGUF--lora.gguf", source: "huggingface", sizeBytes: LORA.length });
      expect(result.path).toBe(path.join(stack.home, "adapters", "hf--org--tiny-GGUF--lora.gguf", "lora.gguf"));
      expect(await stack.store.listAdapters()).toMatchObject([{ id: "hf--org--tiny-GGUF--lora.gguf", ref: `hf:${REPO}/lora.gguf` }]);
      expect(await stack.resolver.resolve({ adapterRef: `hf:${REPO}/lora.gguf` })).toMatchObject({ source: "local" });
      expect(await failure(stack.resolver.resolve({ adapterRef: "hf:org/../x.gguf" }))).toMatchObject({ code: Code.InvalidArgument, reason: "INVALID_ADAPTER_REF" });
      expect(await failure(stack.resolver.resolve({ adapterRef: "relative/path.gguf" }))).toMatchObject({ code: Code.InvalidArgument, reason: "INVALID_ADAPTER_REF" });
    } finally {
      await stack.dispose();
    }
  });

  describe("explains every way the hub can say no", () => {
    const cases: Array<{ name: string; model: () => ReturnType<typeof entry>; env?: Record<string, string>; reason: string; code: Code; message: RegExp; arrange?: () => void }> = [
      {
        name: "gated repo without a token",
        model: () => entry("gated", GATED, "g.gguf"),
        reason: "GATED_REPO", code: Code.PermissionDenied,
        message: /^gated: request access on the model page http:\/\/127\.0\.0\.1:\d+\/org\/gated-GGUF, then set HF_TOKEN/,
      },
      {
        name: "gated repo with a token not yet approved",
        model: () => entry("gated", GATED, "g.gguf"), env: { HF_TOKEN: "hf_other" },
        reason: "GATED_REPO", code: Code.PermissionDenied, message: /request access on the model page .*has not been granted access yet/,
      },
      { name: "missing repository", model: () => entry("nope", "org/does-not-exist", "x.gguf"), reason: "REPO_NOT_FOUND", code: Code.NotFound, message: /repository org\/does-not-exist does not exist .*set HF_TOKEN/ },
      {
        name: "missing repository, with a token", model: () => entry("nope", "org/does-not-exist", "x.gguf"), env: { HF_TOKEN: TOKEN },
        reason: "REPO_NOT_FOUND", code: Code.NotFound, message: /does not exist on .* \(or HF_TOKEN cannot see it\)/,
      },
      { name: "private repository without a token", model: () => entry("private", PRIVATE, "p.gguf"), reason: "REPO_NOT_FOUND", code: Code.NotFound, message: /if it is private, set HF_TOKEN/ },
      { name: "disabled repository", model: () => entry("disabled", DISABLED, "d.gguf"), reason: "ACCESS_DENIED", code: Code.PermissionDenied, message: /refused org\/disabled-GGUF \(HTTP 403\): Access to this resource is disabled/ },
      { name: "rejected token", model: () => entry("tiny", REPO, "tiny-Q4_K_M.gguf"), env: { HF_TOKEN: "hf_unknown" }, reason: "AUTH_REQUIRED", code: Code.Unauthenticated, message: /rejected HF_TOKEN \(HTTP 401\)/ },
      { name: "missing file", model: () => entry("nofile", REPO, "missing.gguf"), reason: "FILE_NOT_FOUND", code: Code.NotFound, message: /org\/tiny-GGUF has no file missing\.gguf at revision "main"/ },
      { name: "bad revision", model: () => entry("badrev", REPO, "tiny-Q4_K_M.gguf", { revision: "no-such-branch" }), reason: "REVISION_NOT_FOUND", code: Code.NotFound, message: /revision "no-such-branch" does not exist in org\/tiny-GGUF/ },
      {
        name: "rate limit with a long reset", model: () => entry("limited", REPO, "tiny-Q4_K_M.gguf"),
        reason: "RATE_LIMITED", code: Code.ResourceExhausted, message: /rate-limits this node \(HTTP 429\); try again in 600 s/,
        arrange: () => void hf.rateLimit("always", 600, { host: "hub" }),
      },
    ];
    it.each(cases)("$name → $reason", async ({ model, env, reason, code, message, arrange }) => {
      const stack = await openStack({ env: { HF_ENDPOINT: hf.url, ...env }, models: [model()] });
      arrange?.();
      try {
        const rec = recorder();
        const err = await failure(stack.resolver.resolve({ modelId: model().id }, { onEvent: rec.onEvent }));
        expect(err).toMatchObject({ reason, code });
        expect(err.message).toMatch(message);
        // local and router-proxy only said "not here", so the hub's own error is the answer.
        expect(JSON.parse(err.metadata.sources!).map((s: { source: string }) => s.source)).toEqual(["local", "huggingface", "router-proxy"]);
        expect(rec.events.filter((e) => e.type === "source-failed")).toHaveLength(3);
        expect(await stack.store.listModels()).toEqual([]);
      } finally {
        hf.clearFaults();
        await stack.dispose();
      }
    });

    it("waits out a short rate limit and succeeds", async () => {
      const stack = await openStack({ env: { HF_ENDPOINT: hf.url }, models: [entry("tiny", REPO, "tiny-Q4_K_M.gguf")] });
      hf.rateLimit(1, 1, { host: "hub" });
      try {
        const started = Date.now();
        expect(await stack.resolver.resolve({ modelId: "tiny" })).toMatchObject({ source: "huggingface" });
        expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      } finally {
        hf.clearFaults();
        await stack.dispose();
      }
    });
  });

  it("answers NOT_FOUND for ids the catalog does not know", async () => {
    const stack = await openStack({ env: { HF_ENDPOINT: hf.url } });
    try {
      const err = await failure(stack.resolver.resolve({ modelId: "unknown-model" }));
      expect(err).toMatchObject({ code: Code.NotFound, reason: "MODEL_NOT_SUPPORTED" });
      expect(err.message).toContain("unknown-model");
    } finally {
      await stack.dispose();
    }
  });

  it("rejects ids that could escape the store with INVALID_ARGUMENT and touches nothing outside it", async () => {
    const parent = tempDir("llmlb-escape-");
    const home = path.join(parent.dir, "home");
    const stack = await openStack({ home, env: { HF_ENDPOINT: hf.url } });
    fs.writeFileSync(path.join(parent.dir, "sentinel"), "x");
    // Everything outside the home, and the store's own directories inside it.
    const outside = () => listTree(parent.dir).filter((p) => !p.startsWith(`home${path.sep}`) || /^home.(models|adapters|\.locks)/.test(p));
    const before = outside();
    hf.clearLog();
    try {
      for (const id of ["../escape", "../../etc/passwd", "a/../../b", "a/b/c", "/tmp/abs", "nul\0byte", "x".repeat(300), "..", "a\\b", ""]) {
        expect(await failure(stack.resolver.resolve({ modelId: id }))).toMatchObject({ code: Code.InvalidArgument, reason: "INVALID_MODEL_ID" });
      }
      expect(outside()).toEqual(before);
      expect(hf.requests).toEqual([]);
    } finally {
      await stack.dispose();
      parent.cleanup();
    }
  });
});
