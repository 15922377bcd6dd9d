import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import type { WatchModelsResponse } from "../src/gen/llmlb/node/v1/catalog_pb.js";
import { ModelState } from "../src/gen/llmlb/node/v1/model_pb.js";
import { ResolverService } from "../src/gen/llmlb/node/v1/resolver_pb.js";
import { errorInfoOf } from "../src/errors/index.js";
import { tinyInfo, tinyQ8, tinySupported, useCatalogWorld } from "./catalog-world.js";
import { describeBytes } from "../../../testkit/gguf/tiny-gguf.js";

const S = ModelState;

describe("a model's life as WatchModels shows it over gRPC", () => {
  const world = useCatalogWorld([tinySupported()]);

  it("moves AVAILABLE → DOWNLOADING (with progress) → READY → (after delete) AVAILABLE", async (ctx) => {
    if (!world.node.runtime.services.resolver.resolve) {
      ctx.skip(); // Resolve is not implemented in this build: the resolver issue provides it.
      return;
    }
    const id = "tiny-chat-q4_k_m";
    const transport = createGrpcTransport({ baseUrl: world.node.grpcUrl });
    const resolver = createClient(ResolverService, transport);
    const controller = new AbortController();
    const seen: WatchModelsResponse[] = [];
    const watching = (async () => {
      try {
        for await (const res of world.node.catalog.watchModels({ modelIds: [id], includeInitial: true }, { signal: controller.signal })) seen.push(res);
      } catch (err) {
        if (!controller.signal.aborted) throw err;
      }
    })();
    const until = async (predicate: () => boolean) => {
      const start = Date.now();
      while (!predicate()) {
        if (Date.now() - start > 15_000) throw new Error(`saw ${seen.map((r) => S[r.model?.state ?? 0]).join(", ")}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await until(() => seen.length === 1);

    // Slow the CDN down so the download lasts long enough to be watched (~1.5 s for the tiny model).
    world.hf.throttle(600_000, { host: "cdn" });
    let done = false;
    for await (const event of resolver.resolve({ target: { case: "modelId", value: id } })) {
      if (event.event.case === "done") done = true;
    }
    world.hf.throttle(null);
    expect(done).toBe(true);
    await until(() => seen.at(-1)?.model?.state === S.READY);
    const ready = (await world.node.catalog.getModel({ modelId: id })).model!;
    expect(ready.local?.path).toMatch(/tiny-chat-Q4_K_M\.gguf$/);
    expect(ready.local?.sizeOnDiskBytes).toBe(BigInt(tinyInfo.size));

    const deleted = await world.node.catalog.deleteModel({ modelId: id });
    expect(deleted.freedBytes).toBe(BigInt(tinyInfo.size));
    await until(() => seen.at(-1)?.model?.state === S.AVAILABLE && seen.length > 2);
    controller.abort();
    await watching;

    const states = seen.map((r) => r.model?.state);
    expect(states.filter((s, i) => s !== states[i - 1])).toEqual([S.AVAILABLE, S.DOWNLOADING, S.READY, S.AVAILABLE]);
    const progress = seen.filter((r) => r.model?.state === S.DOWNLOADING).map((r) => r.model?.progress?.completedBytes ?? 0n);
    expect(progress.some((b) => b > 0n)).toBe(true);
  });
});

describe("a model dropped from supported_models.json while its files are on disk", () => {
  const world = useCatalogWorld([tinySupported(), tinySupported({ id: "dropped-later" })]);

  it("can still be removed with DeleteModel (llmlb-node rm), which frees its files and says why", async () => {
    for await (const res of world.node.clients.resolver.resolve({ target: { case: "modelId", value: "dropped-later" } })) void res;
    const dir = path.join(world.home, "models", "dropped-later");
    expect(fs.existsSync(dir)).toBe(true);
    fs.writeFileSync(world.supportedFile, JSON.stringify({ models: [tinySupported()] }));
    await world.restart();

    const deleted = await world.node.catalog.deleteModel({ modelId: "dropped-later" });
    expect(deleted.freedBytes).toBe(BigInt(tinyInfo.size));
    expect(fs.existsSync(dir)).toBe(false);
    const again = await world.node.catalog.deleteModel({ modelId: "dropped-later" }).catch((e: unknown) => errorInfoOf(e));
    expect(again).toMatchObject({ reason: "MODEL_NOT_SUPPORTED" });
  });
});

describe("a catalog entry whose file changes while a copy is on disk", () => {
  const world = useCatalogWorld([tinySupported()]);

  it("is fetched again by the next pull, replacing the copy the catalog no longer vouches for", async () => {
    const resolve = async () => {
      for await (const res of world.node.clients.resolver.resolve({ target: { case: "modelId", value: "tiny-chat-q4_k_m" } })) void res;
    };
    await resolve();
    const q8 = describeBytes(tinyQ8);
    fs.writeFileSync(world.supportedFile, JSON.stringify({ models: [tinySupported({ recommended_filename: "tiny-chat-Q8_0.gguf", sha256: q8.sha256, size_bytes: q8.size, quantization: "Q8_0" })] }));
    await world.restart();
    await resolve();
    const { model } = await world.node.catalog.getModel({ modelId: "tiny-chat-q4_k_m" });
    expect(model?.local).toMatchObject({ verified: true });
    expect(createHash("sha256").update(fs.readFileSync(model!.local!.path)).digest("hex")).toBe(q8.sha256);
  });
});
