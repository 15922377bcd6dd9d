import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArtifactKind } from "../src/gen/llmlb/node/v1/model_pb.js";
import { ResolverService, type ListSourcesResponse, type ResolveResponse } from "../src/gen/llmlb/node/v1/resolver_pb.js";
import { errorInfoOf, grpcJsClient, startTestNode, type TestNode } from "../../../testkit/node/index.js";
import { startHfStandin, type HfStandin } from "../../../testkit/standins/index.js";
import { TINY, TINY_INFO } from "./resolver-world.js";
import { tinySupported, writeSupportedFile } from "./catalog-world.js";

function collect(stream: grpc.ClientReadableStream<ResolveResponse>): Promise<{ events: ResolveResponse[]; error?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    const events: ResolveResponse[] = [];
    stream.on("data", (m: ResolveResponse) => events.push(m));
    stream.on("error", (error: grpc.ServiceError) => resolve({ events, error }));
    stream.on("end", () => resolve({ events }));
  });
}


describe("ResolverService over gRPC (h2c, @grpc/grpc-js)", () => {
  let hf: HfStandin;
  let node: TestNode;
  let client: ReturnType<typeof grpcJsClient>;
  let supported: { file: string; cleanup: () => void };
  beforeAll(async () => {
    hf = await startHfStandin();
    await hf.addRepo("org/tiny-GGUF", { files: { "tiny-Q4_K_M.gguf": TINY } });
    supported = writeSupportedFile([
      tinySupported({ id: "tiny", repo: "org/tiny-GGUF", recommended_filename: "tiny-Q4_K_M.gguf", size_bytes: TINY_INFO.size, sha256: TINY_INFO.sha256 }),
    ]);
    node = await startTestNode({ HF_ENDPOINT: hf.url, LLMLB_DISK_RESERVE: "0", LLMLB_SUPPORTED_MODELS: supported.file });
    client = grpcJsClient(ResolverService, node.grpcUrl);
  });
  afterAll(async () => {
    client?.close();
    await node?.stop();
    await hf?.close();
    supported?.cleanup();
  });

  it("streams sources tried, progress and done, then answers from the store", async () => {
    const { events, error } = await collect(client.stream("resolve", { target: { case: "modelId", value: "tiny" } }));
    expect(error).toBeUndefined();
    const cases = events.map((e) => e.event.case);
    expect(cases.slice(0, 3)).toEqual(["sourceTried", "sourceFailed", "sourceTried"]);
    expect(events[0]!.event.value).toMatchObject({ source: "local" });
    expect(events[1]!.event.value).toMatchObject({ source: "local", code: "NOT_HERE" });
    expect(events[2]!.event.value).toMatchObject({ source: "huggingface" });
    const progress = events.filter((e) => e.event.case === "progress").map((e) => e.event.value as { fraction: number; completedBytes: bigint; totalBytes: bigint });
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress.at(-1)).toMatchObject({ fraction: 1, completedBytes: BigInt(TINY_INFO.size), totalBytes: BigInt(TINY_INFO.size) });
    expect(cases.at(-1)).toBe("done");
    expect(events.at(-1)!.event.value).toMatchObject({ id: "tiny", source: "huggingface", sizeBytes: BigInt(TINY_INFO.size), sha256: TINY_INFO.sha256 });
    expect((events.at(-1)!.event.value as { path: string }).path).toContain(node.home);

    const again = await collect(client.stream("resolve", { target: { case: "modelId", value: "tiny" } }));
    expect(again.events.map((e) => e.event.case)).toEqual(["done"]);
    expect(again.events[0]!.event.value).toMatchObject({ source: "local" });
    expect(await node.runtime.store.isCached("tiny")).toBe(true);
  });

  it("sends errors as gRPC status codes with an ErrorInfo reason", async () => {
    const unknown = await collect(client.stream("resolve", { target: { case: "modelId", value: "no-such-model" } }));
    expect(unknown.error?.code).toBe(grpc.status.NOT_FOUND);
    expect(errorInfoOf(unknown.error!)?.reason).toBe("MODEL_NOT_SUPPORTED");
    const bad = await collect(client.stream("resolve", { target: { case: "modelId", value: "../../etc/passwd" } }));
    expect(bad.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(errorInfoOf(bad.error!)?.reason).toBe("INVALID_MODEL_ID");
    const empty = await collect(client.stream("resolve", {}));
    expect(empty.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it("lists the effective source chain in the order it is tried", async () => {
    const res = await client.unary<ListSourcesResponse>("listSources", {});
    expect(res.sources.map((s) => [s.name, s.priority, s.enabled, s.module])).toEqual([
      ["local", 10, true, "@llmlb/plugins/local"],
      ["huggingface", 20, true, "@llmlb/plugins/huggingface"],
      ["github-adapter", 25, true, "@llmlb/plugins/github-adapter"],
      ["router-proxy", 30, true, "@llmlb/plugins/router-proxy"],
    ]);
    expect(res.sources[1]!.kinds).toEqual([ArtifactKind.MODEL, ArtifactKind.ADAPTER]);
    expect(res.sources[2]!.kinds).toEqual([ArtifactKind.ADAPTER]);
  });
});
