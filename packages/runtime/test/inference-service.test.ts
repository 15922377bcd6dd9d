import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import type * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorInfoOf, type ModelEvent } from "../src/index.js";
import { InferenceService, type ChatResponse, type LoadedModel } from "../src/gen/llmlb/node/v1/inference_pb.js";
import { grpcJsClient, startTestNode, type TestNode } from "../../../testkit/node/index.js";
import { writeTinyLora } from "../../../testkit/gguf/tiny-gguf.js";
import { parsePrometheusText } from "../../../testkit/metrics/prometheus-text.js";
import { startTinyWorld, tinyChat, tinyEntry, TINY_CHAT_FILE, type TinyWorld } from "../../../testkit/world/tiny-world.js";

const BROKEN_REPO = "llmlb-test/broken-GGUF";
const BROKEN = tinyChat.subarray(0, 300_000);

let world: TinyWorld;
let node: TestNode;
let client: ReturnType<typeof grpcJsClient>;
const events: ModelEvent[] = [];

beforeAll(async () => {
  // The catalog lists the tiny chat and embedding models, plus a truncated GGUF that downloads
  // fine but must never reach llama.cpp.
  world = await startTinyWorld({
    extraModels: [{ ...tinyEntry("tiny-broken", "broken.gguf", BROKEN, ["text-generation"]), repo: BROKEN_REPO }],
  });
  await world.hf.addRepo(BROKEN_REPO, { files: { "broken.gguf": BROKEN } });
  node = await startTestNode({ ...world.env, LLMLB_PARALLELISM: "1", LLMLB_QUEUE_SIZE: "1" });
  node.runtime.events.on((event) => events.push(event));
  client = grpcJsClient(InferenceService, node.grpcUrl);
});
afterAll(async () => {
  client?.close();
  await node?.stop();
  await world?.close();
});

interface StreamResult {
  messages: ChatResponse[];
  text: string;
  last: ChatResponse;
}

function readStream(call: grpc.ClientReadableStream<ChatResponse>): Promise<StreamResult> {
  return new Promise((resolve, reject) => {
    const messages: ChatResponse[] = [];
    call.on("data", (message: ChatResponse) => messages.push(message));
    call.on("error", reject);
    call.on("end", () => resolve({ messages, text: messages.map((m) => m.delta).join(""), last: messages[messages.length - 1]! }));
  });
}

const chat = (request: Record<string, unknown>) => readStream(client.stream<ChatResponse>("chat", request));
const greedy = (modelId: string, content: string, maxTokens: number) => ({
  modelId,
  messages: [{ role: "user", content }],
  temperature: 0,
  maxTokens,
});
/** Waits (bounded) until the model serves no request: a generation that does not stop never gets there. */
async function untilIdle(id: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await node.runtime.engine.list()).find((m) => m.modelId === id)?.activeRequests !== 0) {
    if (Date.now() > deadline) throw new Error(`model ${id} still serves a request 10 s after its client went away`);
    await delay(20);
  }
}
const generatedTokens = async (id: string) => (await node.runtime.engine.list()).find((m) => m.modelId === id)?.generatedTokens ?? 0;

describe("InferenceService over gRPC", () => {
  it("answers no_wait for a model that is not on disk with MODEL_NOT_READY", async () => {
    const failure = await node.clients.inference.embed({ modelId: "tiny-embed", inputs: ["x"], noWait: true }).catch((e: unknown) => e);
    expect(errorInfoOf(failure)).toMatchObject({ reason: "MODEL_NOT_READY" });
  });

  it("refuses embeddings from a chat model that is not on disk with CAPABILITY_MISSING, without downloading it", async () => {
    const refused = await node.clients.inference.embed({ modelId: "tiny-chat", inputs: ["x"] }).catch((e: unknown) => e);
    expect(errorInfoOf(refused)).toMatchObject({ reason: "CAPABILITY_MISSING", metadata: { model_id: "tiny-chat", capability: "embeddings" } });
    expect(world.hf.requests.some((r) => r.path.includes(TINY_CHAT_FILE))).toBe(false);
    expect((await node.clients.catalog.getModel({ modelId: "tiny-chat" })).model?.local).toBeUndefined();
  });

  it("resolves a catalog model that is not on disk from the hub, then streams the answer", async () => {
    const result = await chat(greedy("tiny-chat", "Hello world", 24));
    expect(world.hf.requests.some((r) => r.path.includes(TINY_CHAT_FILE))).toBe(true);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(["transfer-started", "transfer-finished", "loaded"]));
    expect(result.messages.length).toBeGreaterThan(2);
    expect(result.last).toMatchObject({ finishReason: "length", usage: { completionTokens: 24 } });
    expect(result.messages.slice(0, -1).every((m) => m.finishReason === "" && m.usage === undefined)).toBe(true);
    // The same request in-process gives the same greedy text: the wire changes nothing.
    let inProcess = "";
    for await (const m of node.clients.inference.chat(greedy("tiny-chat", "Hello world", 24))) inProcess += m.delta;
    expect(result.text).toBe(inProcess);
  });

  it("streams a raw completion", async () => {
    const result = await readStream(
      client.stream<ChatResponse>("complete", { modelId: "tiny-chat", prompt: "The capital of France is", temperature: 0, maxTokens: 8 }),
    );
    expect(result.last).toMatchObject({ finishReason: "length", usage: { completionTokens: 8 } });
  });

  it("embeds with an embedding model, one vector per input", async () => {
    const response = await client.unary<{ embeddings: Array<{ values: number[] }>; dimensions: number }>("embed", {
      modelId: "tiny-embed",
      inputs: ["hello", "world"],
    });
    expect(response.dimensions).toBe(64);
    expect(response.embeddings.map((e) => e.values.length)).toEqual([64, 64]);
  });

  it("stops generating when the client cancels the stream", async () => {
    const call = client.stream<ChatResponse>("chat", { modelId: "tiny-chat", messages: [{ role: "user", content: "Go on" }], temperature: 0 });
    await new Promise<void>((resolve) => call.once("data", () => resolve()));
    call.on("error", () => undefined);
    call.cancel();
    await untilIdle("tiny-chat");
    const atCancel = await generatedTokens("tiny-chat");
    await delay(300);
    expect(await generatedTokens("tiny-chat")).toBe(atCancel);
  });

  it("stops generating when the deadline passes", async () => {
    const call = (client.raw as unknown as Record<string, Function>).chat!.call(
      client.raw,
      { modelId: "tiny-chat", messages: [{ role: "user", content: "Go on" }], temperature: 0 },
      { deadline: Date.now() + 150 },
    ) as grpc.ClientReadableStream<ChatResponse>;
    const failure = await readStream(call).catch((e: { code: number }) => e);
    expect(failure).toMatchObject({ code: 4 }); // DEADLINE_EXCEEDED
    await untilIdle("tiny-chat");
    const atDeadline = await generatedTokens("tiny-chat");
    await delay(300);
    expect(await generatedTokens("tiny-chat")).toBe(atDeadline);
  });

  it("serves a call whose deadline is further away than a timer can wait (30 days, a year) instead of timing it out at once", async () => {
    for (const days of [30, 365]) {
      const call = (client.raw as unknown as Record<string, Function>).chat!.call(
        client.raw,
        greedy("tiny-chat", "Hello", 4),
        { deadline: Date.now() + days * 86_400_000 },
      ) as grpc.ClientReadableStream<ChatResponse>;
      const result = await readStream(call);
      expect(result.last.usage?.completionTokens, `${days} days`).toBe(4);
    }
  });

  it("answers QUEUE_FULL with retry_after_seconds when the model's slots and queue are taken", async () => {
    const controller = new AbortController();
    const hold = async () => {
      for await (const _ of node.clients.inference.chat(greedy("tiny-chat", "Go on", 100_000), { signal: controller.signal }));
    };
    const running = hold().catch(() => undefined);
    const queued = hold().catch(() => undefined);
    await delay(100);
    const refused = await node.clients.inference.chat(greedy("tiny-chat", "x", 2))[Symbol.asyncIterator]().next().catch((e: unknown) => e);
    const info = errorInfoOf(refused);
    expect(info).toMatchObject({ reason: "QUEUE_FULL" });
    expect(Number(info.metadata.retry_after_seconds)).toBeGreaterThanOrEqual(1);
    controller.abort();
    await Promise.all([running, queued]);
  });

  it("refuses a truncated download with INVALID_MODEL_FILE and keeps serving", async () => {
    const failure = await chat(greedy("tiny-broken", "x", 4)).catch((e: { code: number; details: string }) => e);
    expect(failure).toMatchObject({ code: 9 }); // FAILED_PRECONDITION
    expect((failure as { details: string }).details).toMatch(/truncated/);
    const after = await chat(greedy("tiny-chat", "Still there?", 4));
    expect(after.last.finishReason).toBe("length");
  });

  it("names the field of an invalid request, and NOT_FOUND for ids outside the catalog", async () => {
    const bad = await chat({ ...greedy("tiny-chat", "x", 4), temperature: 3 }).catch((e: { code: number; details: string }) => e);
    expect(bad).toMatchObject({ code: 3 }); // INVALID_ARGUMENT
    expect((bad as { details: string }).details).toMatch(/^temperature/);
    const unknown = await node.clients.inference.chat(greedy("nope", "x", 4))[Symbol.asyncIterator]().next().catch((e: unknown) => e);
    expect(errorInfoOf(unknown)).toMatchObject({ reason: "MODEL_NOT_SUPPORTED", code: 5 });
  });

  it("labels failed calls in llmlb_request_duration_seconds with the status their client got, never Unknown", async () => {
    const counts = async () => {
      const families = parsePrometheusText(await node.runtime.metrics.render());
      const byCode = new Map<string, number>();
      for (const sample of families.get("llmlb_request_duration_seconds")?.samples ?? []) {
        if (sample.name === "llmlb_request_duration_seconds_count" && sample.labels.method === "InferenceService/Chat") byCode.set(sample.labels.code!, sample.value);
      }
      return byCode;
    };
    const before = await counts();
    expect(await chat(greedy("nope", "x", 4)).catch((e: { code: number }) => e)).toMatchObject({ code: 5 }); // NOT_FOUND
    expect(await chat({ ...greedy("tiny-chat", "x", 4), temperature: 3 }).catch((e: { code: number }) => e)).toMatchObject({ code: 3 }); // INVALID_ARGUMENT
    const call = client.stream<ChatResponse>("chat", greedy("tiny-chat", "Go on", 100_000));
    call.on("error", () => undefined);
    await new Promise<void>((resolve) => call.once("data", () => resolve()));
    call.cancel();
    await untilIdle("tiny-chat");
    const after = await counts();
    const added = (code: string) => (after.get(code) ?? 0) - (before.get(code) ?? 0);
    expect({ NotFound: added("NotFound"), InvalidArgument: added("InvalidArgument"), Canceled: added("Canceled") }).toEqual({ NotFound: 1, InvalidArgument: 1, Canceled: 1 });
    expect(after.has("Unknown")).toBe(false);
  });

  it("counts in llmlb_inference_tokens_total the tokens of every request once: answered over gRPC or in-process, cancelled, embedded", async () => {
    const counted = async (model: string) => {
      const samples = parsePrometheusText(await node.runtime.metrics.render()).get("llmlb_inference_tokens_total")?.samples ?? [];
      const kind = (k: string) => samples.find((s) => s.labels.model === model && s.labels.kind === k)?.value ?? 0;
      return { prompt: kind("prompt"), completion: kind("completion") };
    };
    /** The counts once they moved from `before` (the runner reports them as the request ends), bounded. */
    const countedAfter = async (model: string, before: { prompt: number; completion: number }) => {
      const deadline = Date.now() + 5_000;
      for (;;) {
        const now = await counted(model);
        if (now.completion !== before.completion || now.prompt !== before.prompt || Date.now() > deadline) return { prompt: now.prompt - before.prompt, completion: now.completion - before.completion };
        await delay(20);
      }
    };

    let before = await counted("tiny-chat");
    const answered = await chat(greedy("tiny-chat", "Count these tokens", 7));
    expect(await countedAfter("tiny-chat", before)).toEqual({ prompt: answered.last.usage!.promptTokens, completion: 7 });

    before = await counted("tiny-chat");
    let usage: ChatResponse["usage"];
    for await (const m of node.clients.inference.chat(greedy("tiny-chat", "And these, in-process", 5))) usage ??= m.usage;
    expect(await countedAfter("tiny-chat", before)).toEqual({ prompt: usage!.promptTokens, completion: 5 });

    // A stream its client cancelled: the tokens the model generated before it stopped still count.
    before = await counted("tiny-chat");
    const call = client.stream<ChatResponse>("chat", greedy("tiny-chat", "Go on and on", 100_000));
    call.on("error", () => undefined);
    let received = "";
    await new Promise<void>((resolve) => call.on("data", (m: ChatResponse) => ((received += m.delta), received.length > 0 && resolve())));
    call.cancel();
    await untilIdle("tiny-chat");
    const cancelled = await countedAfter("tiny-chat", before);
    expect(cancelled.prompt).toBeGreaterThan(0);
    expect(cancelled.completion).toBeGreaterThanOrEqual(1);

    before = await counted("tiny-embed");
    const embedded = await node.clients.inference.embed({ modelId: "tiny-embed", inputs: ["one", "two three"] });
    expect(await countedAfter("tiny-embed", before)).toEqual({ prompt: embedded.usage!.promptTokens, completion: 0 });

    // Embeddings refused part-way (the second input does not fit): the first input was processed.
    before = await counted("tiny-embed");
    const refused = await node.clients.inference.embed({ modelId: "tiny-embed", inputs: ["one", "word ".repeat(20_000)] }).catch((e: unknown) => e);
    expect(errorInfoOf(refused)).toMatchObject({ reason: "INVALID_ARGUMENT", metadata: { field: "inputs[1]" } });
    const { tokens } = await node.clients.inference.tokenize({ modelId: "tiny-embed", content: "one" });
    expect(await countedAfter("tiny-embed", before)).toEqual({ prompt: tokens.length, completion: 0 });
  });

  it("names a tool's parameters_json and a schema_json that are not JSON", async () => {
    const tool = await chat({ ...greedy("tiny-chat", "x", 4), tools: [{ name: "f", parametersJson: "{not json" }] }).catch((e: { code: number; details: string }) => e);
    expect(tool).toMatchObject({ code: 3, details: expect.stringMatching(/^tools\[0\]\.parameters_json is not valid JSON/) });
    const format = await chat({ ...greedy("tiny-chat", "x", 4), responseFormat: { type: "json_schema", schemaJson: "[" } }).catch((e: { code: number; details: string }) => e);
    expect(format).toMatchObject({ code: 3, details: expect.stringMatching(/^response_format\.schema_json/) });
    const mode = await chat({ ...greedy("tiny-chat", "x", 4), tools: [{ name: "f" }], toolChoice: { mode: "always" } }).catch((e: { code: number; details: string }) => e);
    expect(mode).toMatchObject({ code: 3, details: expect.stringMatching(/^tool_choice\.mode/) });
  });

  it("refuses UnloadModel for an empty, invalid or unknown model_id as LoadModel does; a catalog model that is not loaded is unloaded=false", async () => {
    const refusal = async (call: Promise<unknown>) => errorInfoOf(await call.then(() => expect.fail("expected the call to fail"), (e: unknown) => e));
    const empty = await refusal(node.clients.inference.unloadModel({ modelId: "" }));
    expect(empty).toMatchObject({ code: 3, reason: "INVALID_ARGUMENT", metadata: { field: "model_id" }, message: "model_id is required" });
    expect(await refusal(node.clients.inference.loadModel({ modelId: "" }))).toMatchObject({ code: 3, metadata: { field: "model_id" } });
    for (const modelId of ["../etc", "a b", "x".repeat(300)]) {
      const invalid = await refusal(node.clients.inference.unloadModel({ modelId }));
      expect(invalid, modelId).toMatchObject({ code: 3, reason: "INVALID_MODEL_ID", metadata: { field: "model_id" }, message: expect.stringMatching(/^model_id: invalid model id /) });
      expect(await refusal(node.clients.inference.loadModel({ modelId })), modelId).toEqual(invalid);
    }
    const unknown = await refusal(node.clients.inference.unloadModel({ modelId: "nope" }));
    expect(unknown).toEqual(await refusal(node.clients.inference.loadModel({ modelId: "nope" })));
    expect(unknown).toMatchObject({ code: 5, reason: "MODEL_NOT_SUPPORTED", message: expect.stringContaining("model nope is neither in supported_models.json nor registered") });
    expect(await node.clients.inference.unloadModel({ modelId: "tiny-broken" })).toMatchObject({ unloaded: false });
  });

  it("loads with an adapter set, lists and unloads models", async () => {
    writeTinyLora(path.join(node.home, "adapters", "style-a", "style-a.gguf"));
    const loaded = await client.unary<{ model: LoadedModel }>("loadModel", { modelId: "tiny-chat", adapterIds: ["style-a"] });
    expect(loaded.model).toMatchObject({ modelId: "tiny-chat", parallelism: 1, gpu: "cpu", adapterSets: ["", "style-a"] });
    expect(Number(loaded.model.memoryBytes)).toBeGreaterThan(800_000);
    const { models } = await client.unary<{ models: LoadedModel[] }>("listLoadedModels", {});
    expect(models.map((m) => m.modelId).sort()).toEqual(["tiny-chat", "tiny-embed"]);
    expect(await client.unary("unloadModel", { modelId: "tiny-embed" })).toMatchObject({ unloaded: true });
    expect(await client.unary("unloadModel", { modelId: "tiny-embed" })).toMatchObject({ unloaded: false });
  });
});
