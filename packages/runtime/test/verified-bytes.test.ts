import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { HttpClient } from "../src/transfer/http-client.js";
import { TransferEngine } from "../src/transfer/transfer-engine.js";
import { tempDir } from "../../../testkit/node/index.js";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHfStandin, startRouterStandin, type HfStandin, type RouterStandin } from "../../../testkit/standins/index.js";
import { entry, failure, listTree, openStack, payload, sha256 } from "./resolver-world.js";

/** Each part of a sharded GGUF is a GGUF file of its own. */
const SHARDS = [payload(200_000, 61), payload(200_000, 62), payload(150_000, 63)];
const SHARD_NAMES = SHARDS.map((_, i) => `m-0000${i + 1}-of-00003.gguf`);
const ROUTED = payload(120_000, 64);

describe("only verified bytes are installed", () => {
  let hf: HfStandin;
  let router: RouterStandin;
  beforeAll(async () => {
    hf = await startHfStandin();
    await hf.addRepo("org/sharded", { files: Object.fromEntries(SHARD_NAMES.map((n, i) => [n, SHARDS[i]!])) });
    router = await startRouterStandin({ digests: false });
    await router.addModel("routed", ROUTED);
  });
  afterAll(async () => {
    await hf?.close();
    await router?.close();
  });

  it("checks every shard against its own sha256: a wrong byte in part 2 is CHECKSUM_MISMATCH and nothing is installed", async () => {
    const fault = hf.corruptByte(100_000, { host: "cdn", path: SHARD_NAMES[1] });
    const stack = await openStack({ env: { HF_ENDPOINT: hf.url }, models: [entry("sharded", "org/sharded", SHARD_NAMES[0]!)] });
    try {
      const err = await failure(stack.resolver.resolve({ modelId: "sharded" }));
      expect(err).toMatchObject({ code: Code.DataLoss, reason: "CHECKSUM_MISMATCH", metadata: { file: SHARD_NAMES[1], expected_sha256: sha256(SHARDS[1]!) } });
      expect(fault.hits).toBe(1);
      expect(await stack.store.listModels()).toEqual([]);
      expect(fs.existsSync(stack.store.modelDir("sharded"))).toBe(false);
      // A clean retry installs all three parts, each recorded with its digest, and says so.
      fault.remove();
      await stack.resolver.resolve({ modelId: "sharded" });
      const installed = await stack.store.getModel("sharded");
      expect(installed?.files.map((f) => f.sha256)).toEqual(SHARDS.map((s) => sha256(s)));
      expect(installed?.verified).toBe(true);
    } finally {
      hf.clearFaults();
      await stack.dispose();
    }
  });

  it("refuses a shard whose digest differs from the one the catalog recorded for it", async () => {
    const forged = SHARDS.map((s) => sha256(s));
    forged[2] = sha256(payload(150_000, 99));
    const stack = await openStack({ env: { HF_ENDPOINT: hf.url }, models: [entry("sharded", "org/sharded", SHARD_NAMES[0]!, { fileSha256s: forged })] });
    try {
      const err = await failure(stack.resolver.resolve({ modelId: "sharded" }));
      expect(err).toMatchObject({ reason: "CHECKSUM_MISMATCH", metadata: { file: SHARD_NAMES[2], expected_sha256: forged[2] } });
      expect(listTree(stack.home).filter((p) => p.endsWith(".gguf"))).toEqual([]);
    } finally {
      await stack.dispose();
    }
  });

  it("installs a router blob without a digest when its size is known, recorded as verified: false", async () => {
    const stack = await openStack({ env: { LLMLB_ROUTER_URL: router.url }, models: [entry("routed", "org/absent", "routed.gguf")] });
    try {
      expect(await stack.resolver.resolve({ modelId: "routed" })).toMatchObject({ source: "router-proxy", sha256: sha256(ROUTED) });
      expect(await stack.store.getModel("routed")).toMatchObject({ verified: false, sizeBytes: ROUTED.length });
    } finally {
      await stack.dispose();
    }
  });

  it("bounds a transfer of unannounced size, keeping nothing of it", async () => {
    // A server that streams without Content-Length and never says the size (chunked).
    const server = http.createServer((req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      let sent = 0;
      const push = () => {
        while (sent < 400_000) {
          sent += 16_384;
          if (!res.write(Buffer.alloc(16_384, 7))) return void res.once("drain", push);
        }
        res.end();
      };
      push();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/blob`;
    const { dir, cleanup } = tempDir("llmlb-unknown-size-");
    const client = new HttpClient();
    const engine = new TransferEngine({ http: client, logger: pino({ level: "silent" }), settings: { downloadConnections: 1, downloadRetries: 0, stallTimeoutSeconds: 5, diskReserve: 0 } });
    try {
      const err = await failure(
        engine.download({ label: "model x", files: [{ name: "x.gguf", url, sha256: sha256(ROUTED) }], partialDir: dir, maxUnknownSizeBytes: 100_000, signal: new AbortController().signal, onProgress: () => undefined }),
      );
      expect(err).toMatchObject({ reason: "FILE_TOO_LARGE", metadata: { limit_bytes: "100000" } });
      expect(err.message).toMatch(/sent more than 100000 bytes/);
      expect(listTree(dir).filter((p) => p.endsWith(".part"))).toEqual([]);
    } finally {
      await client.close();
      server.closeAllConnections();
      server.close();
      cleanup();
    }
  });
});
