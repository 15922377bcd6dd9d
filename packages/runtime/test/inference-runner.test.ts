import { setTimeout as delay } from "node:timers/promises";
import { fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelEvent } from "../src/index.js";
import { ErrorInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../src/gen/google/rpc/status_pb.js";
import { ModelCatalogService } from "../src/gen/llmlb/node/v1/catalog_pb.js";
import { ModelState, type Model } from "../src/gen/llmlb/node/v1/model_pb.js";
import { InferenceService, type ChatResponse } from "../src/gen/llmlb/node/v1/inference_pb.js";
import { grpcJsClient, startTestNode, type TestNode } from "../../../testkit/node/index.js";
import { startTinyWorld, tinyChat, tinyEntry, TINY_EMBED_FILE, TINY_EMBED_ID, type TinyWorld } from "../../../testkit/world/tiny-world.js";

const CRASH_REPO = "llmlb-test/crash-GGUF";
const CRASH_ID = "tiny-crash";
/**
 * The tiny model with two identical tokens in its vocabulary ("<0x01>" rewritten as "<0x00>"): it
 * passes the node's GGUF validation (which refuses the crash classes it knows, such as 100000
 * blocks) and llama.cpp aborts loading it (GGML_ASSERT id_to_token.size() == token_to_id.size()).
 */
const CRASH = withDuplicateToken(tinyChat);

function withDuplicateToken(bytes: Uint8Array): Uint8Array {
  const copy = Buffer.from(bytes);
  const at = copy.indexOf(Buffer.from("<0x01>"));
  copy.write("<0x00>", at, "latin1");
  return copy;
}
const BACKOFF_SECONDS = 2;

let world: TinyWorld;
let node: TestNode;
let inference: ReturnType<typeof grpcJsClient>;
let catalog: ReturnType<typeof grpcJsClient>;
const events: ModelEvent[] = [];

beforeAll(async () => {
  world = await startTinyWorld({
    extraModels: [{ ...tinyEntry(CRASH_ID, "crash.gguf", CRASH, ["text-generation"]), repo: CRASH_REPO }],
  });
  await world.hf.addRepo(CRASH_REPO, { files: { "crash.gguf": CRASH } });
  node = await startTestNode({ ...world.env, LLMLB_RUNNER_CRASH_BACKOFF: String(BACKOFF_SECONDS) });
  node.runtime.events.on((event) => events.push(event));
  inference = grpcJsClient(InferenceService, node.grpcUrl);
  catalog = grpcJsClient(ModelCatalogService, node.grpcUrl);
});
afterAll(async () => {
  inference?.close();
  catalog?.close();
  await node?.stop();
  await world?.close();
});

describe("the supervised inference runner", () => {
  it("ends a gRPC stream whose runner is killed with UNAVAILABLE / ENGINE_CRASHED naming the model, then serves the next request", async () => {
    const call = inference.stream<ChatResponse>("chat", chatRequest("tiny-chat", 100_000));
    const outcome = streamOutcome(call);
    await new Promise<void>((resolve) => call.once("data", () => resolve()));
    const crashed = node.runtime.engine.runnerPid()!;
    process.kill(crashed, "SIGKILL");

    const { error } = await outcome;
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(errorInfo(error!)).toMatchObject({ reason: "ENGINE_CRASHED", metadata: { model_id: "tiny-chat" } });
    expect(error!.details).toContain("SIGKILL");
    expect(await modelState("tiny-chat")).toBe(ModelState.READY);

    const next = await streamOutcome(inference.stream<ChatResponse>("chat", chatRequest("tiny-chat", 8)));
    expect(next.error).toBeUndefined();
    expect(next.last).toMatchObject({ finishReason: "length", usage: { completionTokens: 8 } });
    expect(node.runtime.engine.runnerPid()).not.toBe(crashed);
  });

  it("ends an SSE stream of /v1/chat/completions whose runner is killed with an engine_crashed error event", async () => {
    const res = await fetch(`${node.httpUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny-chat", messages: [{ role: "user", content: "Go on" }], temperature: 0, max_tokens: 100_000, stream: true }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = (await reader.read()).value ?? "";
    process.kill(node.runtime.engine.runnerPid()!, "SIGKILL");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const lastEvent = JSON.parse(text.trim().split("\n\n").at(-1)!.replace(/^data: /, "")) as { error?: { code: string; message: string } };
    expect(lastEvent.error).toMatchObject({ code: "engine_crashed" });
    expect(lastEvent.error!.message).toContain('model "tiny-chat"');

    const next = await fetch(`${node.httpUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny-chat", messages: [{ role: "user", content: "Hi" }], temperature: 0, max_tokens: 4 }),
    });
    expect(next.status).toBe(200);
    expect(((await next.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(4);
  });

  it("lets a download that a request started run to the end when the runner dies under that request", async () => {
    const throttle = world.hf.throttle(400_000, { path: TINY_EMBED_FILE });
    const embedding = inference.unary("embed", { modelId: TINY_EMBED_ID, inputs: ["x"] }).catch((e: grpc.ServiceError) => e);
    await waitFor(() => events.some((e) => e.type === "transfer-started" && e.modelId === TINY_EMBED_ID));
    process.kill(node.runtime.engine.runnerPid()!, "SIGKILL");

    expect(errorInfo((await embedding) as grpc.ServiceError)).toMatchObject({ reason: "ENGINE_CRASHED", metadata: { model_id: TINY_EMBED_ID } });
    expect(events.some((e) => e.type === "transfer-finished" && e.modelId === TINY_EMBED_ID)).toBe(false);
    await waitFor(() => events.some((e) => e.type === "transfer-finished" && e.modelId === TINY_EMBED_ID));
    expect(await modelState(TINY_EMBED_ID)).toBe(ModelState.READY);
    throttle?.remove();
  });

  it("marks a model whose load crashes the runner FAILED, backs off, keeps it FAILED after a second crash, and keeps serving another model", async () => {
    const loadsOfCrash = () => events.filter((e) => e.type === "load-started" && e.modelId === CRASH_ID).length;

    const first = await streamOutcome(inference.stream<ChatResponse>("chat", chatRequest(CRASH_ID, 4)));
    expect(first.error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(errorInfo(first.error!)).toMatchObject({ reason: "ENGINE_CRASHED", metadata: { model_id: CRASH_ID } });
    expect(loadsOfCrash()).toBe(1);
    const failed = await getModel(CRASH_ID);
    expect(failed.state).toBe(ModelState.FAILED);
    expect(failed.failureReason).toContain("crashed the inference runner");
    expect(failed.failureReason).toContain("GGML_ASSERT");

    // Within the backoff the model is refused without touching the runner.
    const refused = await streamOutcome(inference.stream<ChatResponse>("chat", chatRequest(CRASH_ID, 4)));
    expect(errorInfo(refused.error!)).toMatchObject({ reason: "ENGINE_CRASHED", metadata: { model_id: CRASH_ID } });
    expect(errorInfo(refused.error!).metadata.retry_after_seconds, refused.error!.details).toMatch(/^[12]$/);
    expect(loadsOfCrash()).toBe(1);
    await expectServes("tiny-chat");

    // After the backoff it is tried once more; the second crash of the same file keeps it FAILED.
    await delay(BACKOFF_SECONDS * 1000 + 100);
    const second = await streamOutcome(inference.stream<ChatResponse>("chat", chatRequest(CRASH_ID, 4)));
    expect(errorInfo(second.error!)).toMatchObject({ reason: "ENGINE_CRASHED" });
    expect(loadsOfCrash()).toBe(2);
    await expectServes("tiny-chat");

    await delay(BACKOFF_SECONDS * 1000 + 100);
    const kept = await streamOutcome(inference.stream<ChatResponse>("chat", chatRequest(CRASH_ID, 4)));
    expect(kept.error?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(errorInfo(kept.error!)).toMatchObject({ reason: "INVALID_MODEL_FILE", metadata: { model_id: CRASH_ID, cause: "ENGINE_CRASHED" } });
    expect(kept.error!.details).toContain("twice");
    expect(loadsOfCrash()).toBe(2);
    expect((await getModel(CRASH_ID)).state).toBe(ModelState.FAILED);

    // An operator's LoadModel is a retry: it loads (and crashes) once more.
    const retried = await inference.unary("loadModel", { modelId: CRASH_ID }).catch((e: grpc.ServiceError) => e);
    expect(errorInfo(retried as grpc.ServiceError)).toMatchObject({ reason: "ENGINE_CRASHED" });
    expect(loadsOfCrash()).toBe(3);
    await expectServes("tiny-chat");
  }, 240_000); // four runner starts: seconds each on a busy 2-core machine
});

async function waitFor(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await delay(20);
  }
}

function chatRequest(modelId: string, maxTokens: number) {
  return { modelId, messages: [{ role: "user", content: "Go on" }], temperature: 0, maxTokens };
}

function streamOutcome(call: grpc.ClientReadableStream<ChatResponse>): Promise<{ messages: ChatResponse[]; last?: ChatResponse; error?: grpc.ServiceError }> {
  const messages: ChatResponse[] = [];
  return new Promise((resolve) => {
    call.on("data", (message: ChatResponse) => messages.push(message));
    call.on("error", (error: grpc.ServiceError) => resolve({ messages, error }));
    call.on("end", () => resolve({ messages, last: messages.at(-1) }));
  });
}

async function expectServes(modelId: string): Promise<void> {
  const outcome = await streamOutcome(inference.stream<ChatResponse>("chat", chatRequest(modelId, 4)));
  expect(outcome.error).toBeUndefined();
  expect(outcome.last?.usage?.completionTokens).toBe(4);
}

function errorInfo(error: grpc.ServiceError): { reason: string; metadata: Record<string, string> } {
  const [details] = error.metadata.get("grpc-status-details-bin") as Buffer[];
  const status = fromBinary(StatusSchema, details!);
  const info = fromBinary(ErrorInfoSchema, status.details[0]!.value);
  return { reason: info.reason, metadata: { ...info.metadata } };
}

async function getModel(modelId: string): Promise<Model> {
  return (await catalog.unary<{ model: Model }>("getModel", { modelId })).model;
}

async function modelState(modelId: string): Promise<ModelState> {
  return (await getModel(modelId)).state;
}

