import * as grpc from "@grpc/grpc-js";
import { create, toBinary, type DescMessage, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModelCatalogService } from "@llmlb/runtime/gen/llmlb/node/v1/catalog_pb";
import { InferenceService } from "@llmlb/runtime/gen/llmlb/node/v1/inference_pb";
import { ResolverService } from "@llmlb/runtime/gen/llmlb/node/v1/resolver_pb";
import { mulberry32 } from "../../../testkit/gguf/tiny-gguf.js";
import { startTestNode, type TestNode } from "../../../testkit/node/index.js";
import { startTinyWorld, TINY_CHAT_FILE, TINY_CHAT_ID, TINY_EMBED_ID, TINY_REPO, type TinyWorld } from "../../../testkit/world/tiny-world.js";

/**
 * Seeded fuzzing of both listeners: mutated protobuf messages for every gRPC method and mutated
 * JSON bodies for every HTTP route. The node (in this process) must never die, and every answer
 * must be a success or a clear error: never INTERNAL/UNKNOWN, never HTTP 500, always a message.
 */
const SEED = 20261202;
const GRPC_CASES = 1500;
const HTTP_CASES = 1500;
const BUDGET_MS = 20_000;
const CALL_TIMEOUT_MS = 2_000;

const SAMPLES: Record<string, Record<string, unknown>> = {
  "ModelCatalogService/ListModels": { pageSize: 5, query: "tiny" },
  "ModelCatalogService/GetModel": { modelId: TINY_CHAT_ID },
  "ModelCatalogService/RegisterModel": { repo: TINY_REPO, filename: TINY_CHAT_FILE, id: "fuzzed", chatTemplate: "{{ messages[0].content }}" },
  "ModelCatalogService/DeleteModel": { modelId: "fuzzed", removeRegistration: true },
  "ModelCatalogService/WatchModels": { modelIds: [TINY_CHAT_ID], includeInitial: true },
  "ModelCatalogService/ListAdapters": {},
  "ModelCatalogService/DeleteAdapter": { adapterId: "hf--org--repo--lora.gguf" },
  "ResolverService/Resolve": { target: { case: "modelId", value: TINY_CHAT_ID } },
  "ResolverService/ListSources": {},
  "InferenceService/Chat": { modelId: TINY_CHAT_ID, messages: [{ role: "user", content: "Hello" }], maxTokens: 4, temperature: 0 },
  "InferenceService/Complete": { modelId: TINY_CHAT_ID, prompt: "Once", maxTokens: 4 },
  "InferenceService/Embed": { modelId: TINY_EMBED_ID, inputs: ["a", "b"] },
  "InferenceService/LoadModel": { modelId: TINY_CHAT_ID },
  "InferenceService/UnloadModel": { modelId: "fuzzed" },
  "InferenceService/ListLoadedModels": {},
  "InferenceService/GetHostStatus": {},
  "InferenceService/Rerank": { modelId: TINY_CHAT_ID, query: "which", documents: ["a", "b"], topN: 1 },
  "InferenceService/Tokenize": { modelId: TINY_CHAT_ID, content: "Hello", addSpecial: true },
  "InferenceService/Detokenize": { modelId: TINY_CHAT_ID, tokens: [1, 2, 3] },
};

type Rand = () => number;
const pick = <T>(r: Rand, items: readonly T[]): T => items[Math.floor(r() * items.length)]!;
const int = (r: Rand, n: number) => Math.floor(r() * n);

/** Byte-level mutations of a serialized message: flips, overwrites, cuts, inserts, duplicates, stray fields. */
function mutateBytes(r: Rand, input: Uint8Array): Buffer {
  let b = Buffer.from(input);
  for (let n = 1 + int(r, 4); n > 0; n--) {
    const at = b.length > 0 ? int(r, b.length) : 0;
    switch (int(r, 6)) {
      case 0:
        if (b.length) b[at] = b[at]! ^ (1 << int(r, 8));
        break;
      case 1:
        if (b.length) b[at] = int(r, 256);
        break;
      case 2:
        b = b.subarray(0, at);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + int(r, 12) }, () => int(r, 256))), b.subarray(at)]);
        break;
      case 4:
        b = Buffer.concat([b, b.subarray(at, at + 1 + int(r, 64))]);
        break;
      default:
        // A field with a random number and wire type, e.g. a length-delimited field claiming 2^31 bytes.
        b = Buffer.concat([b, Buffer.from([(int(r, 30) << 3) | pick(r, [0, 1, 2, 5]), 0xff, 0xff, 0xff, 0xff, 0x07])]);
    }
  }
  return b;
}

const WEIRD: ReadonlyArray<(r: Rand) => unknown> = [
  () => null, () => -1, () => 1e308, () => 2 ** 53 + 1, () => -0.5, () => true, () => "",
  (r) => "x".repeat(int(r, 100_000)), () => "\u0000\uD800\uFFFF", () => "../../etc/passwd", () => [], () => ({}),
  () => [[[[[[[[[[[[]]]]]]]]]]]], (r) => Array.from({ length: int(r, 2000) }, () => "y"), () => ({ __proto__: { polluted: true } }), () => "NaN",
];

/** Structural mutations of a JSON value: wrong types, huge values, missing and extra keys. */
function mutateJson(r: Rand, value: unknown, depth = 0): unknown {
  if (r() < 0.15) return pick(r, WEIRD)(r);
  if (Array.isArray(value)) return value.map((v) => mutateJson(r, v, depth + 1)).concat(r() < 0.2 ? [pick(r, WEIRD)(r)] : []);
  if (value !== null && typeof value === "object" && depth < 6) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (r() > 0.1) out[k] = r() < 0.5 ? mutateJson(r, v, depth + 1) : v;
    if (r() < 0.2) out[pick(r, ["extra", "model", "stream", "n", "max_tokens", "messages", "input", "id"])] = pick(r, WEIRD)(r);
    return out;
  }
  return value;
}

function mutatedBody(r: Rand, sample: unknown): string {
  const text = JSON.stringify(mutateJson(r, sample)) ?? "null";
  const roll = r();
  if (roll < 0.08) return text.slice(0, int(r, text.length));
  if (roll < 0.12) return text.replace(/[{}[\]":,]/, pick(r, ["", "\\", "\u0000", "{{"]));
  return text;
}

/** A raw gRPC client: the bytes go on the wire as they are. */
function rawClient(services: DescService[], address: string) {
  const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  for (const service of services) {
    for (const method of service.methods) {
      definition[`${service.name}/${method.name}`] = {
        path: `/${service.typeName}/${method.name}`,
        requestStream: false,
        responseStream: method.methodKind === "server_streaming",
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      };
    }
  }
  const Client = grpc.makeGenericClientConstructor(definition as grpc.ServiceDefinition, "Fuzz");
  return new Client(address.replace(/^http:\/\//, ""), grpc.credentials.createInsecure()) as unknown as Record<string, Function> & grpc.Client;
}

interface Outcome {
  code: number;
  details: string;
}

function callRaw(client: Record<string, Function> & grpc.Client, key: string, streaming: boolean, body: Buffer): Promise<Outcome> {
  const deadline = new Date(Date.now() + CALL_TIMEOUT_MS);
  return new Promise((resolve) => {
    if (!streaming) {
      client[key]!.call(client, body, new grpc.Metadata(), { deadline }, (err: grpc.ServiceError | null) =>
        resolve(err ? { code: err.code, details: err.details } : { code: 0, details: "" }),
      );
      return;
    }
    const call = client[key]!.call(client, body, new grpc.Metadata(), { deadline }) as grpc.ClientReadableStream<Buffer>;
    call.on("data", () => undefined);
    call.on("error", (err: grpc.ServiceError) => resolve({ code: err.code, details: err.details }));
    call.on("end", () => resolve({ code: 0, details: "" }));
  });
}

/** Runs jobs with a fixed number in flight until all ran or the budget is spent. */
async function runBounded(jobs: Array<() => Promise<void>>, concurrency: number, budgetMs: number): Promise<number> {
  const stopAt = Date.now() + budgetMs;
  let next = 0;
  let ran = 0;
  const worker = async () => {
    while (next < jobs.length && Date.now() < stopAt) {
      const job = jobs[next++]!;
      await job();
      ran++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return ran;
}

let world: TinyWorld;
let node: TestNode;

beforeAll(async () => {
  world = await startTinyWorld();
  node = await startTestNode({ ...world.env, LLMLB_QUEUE_SIZE: "4" });
  // The chat model on disk and loaded, so inference calls reach the engine.
  for await (const _ of node.clients.inference.chat({ modelId: TINY_CHAT_ID, messages: [{ role: "user", content: "hi" }], maxTokens: 2 })) void _;
}, 120_000);
afterAll(async () => {
  await node?.stop();
  await world?.close();
}, 120_000);

describe("fuzzing both listeners with a fixed seed", () => {
  it("answers every mutated protobuf message on every gRPC method with a success or a clear error", async () => {
    const services: DescService[] = [ModelCatalogService, ResolverService, InferenceService];
    const client = rawClient(services, node.grpcUrl);
    const r = mulberry32(SEED);
    const methods = services.flatMap((s) => s.methods.map((m) => ({ key: `${s.name}/${m.name}`, method: m })));
    expect(methods.map((m) => m.key).sort()).toEqual(Object.keys(SAMPLES).sort());
    const bad: string[] = [];
    const jobs = Array.from({ length: GRPC_CASES }, (_, i) => {
      const { key, method } = methods[i % methods.length]!;
      const valid = toBinary(method.input as DescMessage, create(method.input as DescMessage, SAMPLES[key] as MessageInitShape<DescMessage>));
      const body = mutateBytes(r, valid);
      return async () => {
        const outcome = await callRaw(client, key, method.methodKind === "server_streaming", body);
        const clear = outcome.code === grpc.status.OK || outcome.code === grpc.status.DEADLINE_EXCEEDED || outcome.details.length > 0;
        if (!clear || outcome.code === grpc.status.INTERNAL || outcome.code === grpc.status.UNKNOWN) {
          bad.push(`${key} ${body.toString("hex").slice(0, 120)} → ${outcome.code} ${outcome.details}`);
        }
      };
    });
    try {
      const ran = await runBounded(jobs, 6, BUDGET_MS);
      expect(ran).toBeGreaterThan(GRPC_CASES / 3);
      expect(bad.slice(0, 10)).toEqual([]);
    } finally {
      client.close();
    }
    const health = await fetch(`${node.httpUrl}/v0/health`);
    expect(health.status).toBe(200);
  }, 90_000);

  it("answers every mutated JSON body on every HTTP route with a success or a clear error", async () => {
    const r = mulberry32(SEED + 1);
    const routes: Array<{ method: string; path: (r: Rand) => string; body?: unknown }> = [
      { method: "POST", path: () => "/v1/chat/completions", body: { model: TINY_CHAT_ID, messages: [{ role: "user", content: "Hi" }], max_tokens: 4, temperature: 0 } },
      { method: "POST", path: () => "/v1/chat/completions", body: { model: TINY_CHAT_ID, messages: [{ role: "user", content: "Hi" }], max_tokens: 4, stream: true } },
      { method: "POST", path: () => "/v1/completions", body: { model: TINY_CHAT_ID, prompt: "Once", max_tokens: 4 } },
      { method: "POST", path: () => "/v1/embeddings", body: { model: TINY_EMBED_ID, input: ["a", "b"] } },
      { method: "POST", path: () => "/v0/models/register", body: { repo: TINY_REPO, filename: TINY_CHAT_FILE, id: "fuzzed-http", chat_template: "{{ messages[0].content }}" } },
      { method: "POST", path: (r) => `/v0/models/${pick(r, [TINY_CHAT_ID, "fuzzed-http", "..%2F..", "a%00b", "x".repeat(300)])}/pull`, body: {} },
      { method: "DELETE", path: (r) => `/v0/models/${pick(r, ["fuzzed-http", "nope", "%2e%2e", "org/../x"])}?remove_registration=${pick(r, ["true", "maybe", ""])}` },
      { method: "GET", path: (r) => `/v0/models?${pick(r, ["state=ready", "state=%00", "page_size=-1", "page_size=99999999999", "page_token=zzz", "query=" + "q".repeat(5000)])}` },
      { method: "GET", path: (r) => `/v0/models/${pick(r, [TINY_CHAT_ID, "nope", "%ff%fe", "a/b/c/d"])}` },
      { method: "GET", path: (r) => `/v0/models/blob/${pick(r, [TINY_CHAT_ID, "nope", "..%2F..%2Fetc%2Fpasswd", `${TINY_CHAT_ID}/..%2Fmetadata.json`])}` },
      { method: "GET", path: (r) => `/v1/models/${pick(r, [TINY_CHAT_ID, "nope", "%00"])}` },
      { method: "POST", path: () => "/v1/rerank", body: { model: TINY_CHAT_ID, query: "which", documents: ["a", "b"], top_n: 1 } },
      { method: "POST", path: () => "/tokenize", body: { model: TINY_CHAT_ID, content: "Hello", add_special: true } },
      { method: "POST", path: () => "/detokenize", body: { model: TINY_CHAT_ID, tokens: [1, 2, 3] } },
      { method: "POST", path: (r) => `/v0/models/${pick(r, [TINY_CHAT_ID, "nope", "%2e%2e"])}/load`, body: { keep_alive: "1m" } },
      { method: "POST", path: (r) => `/v0/models/${pick(r, [TINY_CHAT_ID, "nope"])}/unload`, body: {} },
      { method: "POST", path: () => "/api/models/pull", body: { model: pick(r, [TINY_CHAT_ID, "nope"]) } },
      { method: "POST", path: () => "/api/models/download", body: { repo: TINY_REPO, filename: TINY_CHAT_FILE } },
      { method: "GET", path: (r) => `/api/models/${pick(r, [TINY_CHAT_ID, "nope", "%00"])}/info` },
      ...[
        ["ModelCatalogService/ListModels", { pageSize: 5 }], ["ModelCatalogService/GetModel", { modelId: TINY_CHAT_ID }],
        ["ModelCatalogService/RegisterModel", { repo: TINY_REPO, filename: TINY_CHAT_FILE, id: "fuzzed-connect" }],
        ["ModelCatalogService/DeleteModel", { modelId: "fuzzed-connect", removeRegistration: true }], ["ModelCatalogService/ListAdapters", {}],
        ["ModelCatalogService/DeleteAdapter", { adapterId: "x" }], ["ResolverService/ListSources", {}],
        ["InferenceService/Embed", { modelId: TINY_EMBED_ID, inputs: ["a"] }], ["InferenceService/LoadModel", { modelId: TINY_CHAT_ID }],
        ["InferenceService/UnloadModel", { modelId: "nope" }], ["InferenceService/ListLoadedModels", {}],
      ].map(([method, body]) => ({ method: "POST", path: () => `/llmlb.node.v1.${method as string}`, body })),
    ];
    const bad: string[] = [];
    const jobs = Array.from({ length: HTTP_CASES }, (_, i) => {
      const route = routes[i % routes.length]!;
      const url = `${node.httpUrl}${route.path(r)}`;
      const body = route.body === undefined ? undefined : mutatedBody(r, route.body);
      return async () => {
        let status = 0;
        let text = "";
        try {
          const res = await fetch(url, {
            method: route.method,
            ...(body !== undefined ? { body, headers: { "content-type": "application/json" } } : {}),
            signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
          });
          status = res.status;
          text = await res.text();
        } catch (err) {
          // Our own timeout on a long answer (a stream, a generation) is not the node's failure.
          if ((err as Error).name === "TimeoutError" || (err as Error).name === "AbortError") return;
          bad.push(`${route.method} ${url} ${body?.slice(0, 200)} → ${(err as Error).message}`);
          return;
        }
        const clearError = status >= 400 && /"message"\s*:\s*"[^"]+/.test(text);
        if (status >= 500 && status !== 503 && status !== 504) bad.push(`${route.method} ${url} ${body?.slice(0, 200)} → ${status} ${text.slice(0, 300)}`);
        else if (status >= 400 && !clearError) bad.push(`${route.method} ${url} ${body?.slice(0, 200)} → ${status} without a message: ${text.slice(0, 300)}`);
      };
    });
    const ran = await runBounded(jobs, 6, BUDGET_MS);
    expect(ran).toBeGreaterThan(HTTP_CASES / 3);
    expect(bad.slice(0, 10)).toEqual([]);
    // Still serving: greedy, so the answer runs to its 4 tokens (a sampled one may stop at once or
    // hold back a partial character, leaving no text).
    let last: { finishReason: string; usage?: { completionTokens: number } } | undefined;
    for await (const m of node.clients.inference.chat({ modelId: TINY_CHAT_ID, messages: [{ role: "user", content: "Still there?" }], maxTokens: 4, temperature: 0 })) last = m;
    expect(last).toMatchObject({ finishReason: "length", usage: { completionTokens: 4 } });
  }, 90_000);
});
