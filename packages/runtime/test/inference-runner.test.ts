import { setTimeout as delay } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelEvent } from "../src/index.js";
import { ModelState } from "../src/gen/llmlb/node/v1/model_pb.js";
import type { ChatResponse } from "../src/gen/llmlb/node/v1/inference_pb.js";
import { errorInfoOf, streamOutcome, type TestNode } from "../../../testkit/node/index.js";
import { chatRequest, startRunnerWorld, type RunnerWorld } from "./fixtures/runner-world.js";
import { tinyChat, TINY_EMBED_FILE, TINY_EMBED_ID, type TinyWorld } from "../../../testkit/world/tiny-world.js";

const CRASH_REPO = "llmlb-test/crash-GGUF";
const CRASH_ID = "tiny-crash";
const ABORT_REPO = "llmlb-test/abort-GGUF";
const ABORT_ID = "tiny-abort";
const BACKOFF_SECONDS = 2;

/**
 * The node validates every model file just before llama.cpp loads it, so no file it knows to be
 * harmful gets there: a native abort (GGML_ASSERT) is sent here as SIGABRT, as runner-hang.test
 * sends SIGSTOP for a hang. The validator's own tests cover the files that abort llama.cpp.
 */
const abortRunnerOn = (event: ModelEvent["type"], modelId: string) =>
  node.runtime.events.on((e) => {
    if (e.type === event && e.modelId === modelId) process.kill(node.runtime.engine.runnerPid()!, "SIGABRT");
  });

let rw: RunnerWorld;
let world: TinyWorld;
let node: TestNode;
let inference: RunnerWorld["inference"];
let events: ModelEvent[];

beforeAll(async () => {
  rw = await startRunnerWorld(
    [
      { id: CRASH_ID, repo: CRASH_REPO, file: "crash.gguf", bytes: tinyChat },
      { id: ABORT_ID, repo: ABORT_REPO, file: "abort.gguf", bytes: tinyChat },
    ],
    { LLMLB_RUNNER_CRASH_BACKOFF: String(BACKOFF_SECONDS) },
  );
  ({ world, node, inference, events } = rw);
});
afterAll(() => rw?.close());

describe("the supervised inference runner", () => {
  it("ends a gRPC stream whose runner is killed with UNAVAILABLE / ENGINE_CRASHED naming the model, then serves the next request", async () => {
    const call = inference.stream<ChatResponse>("chat", chatRequest("tiny-chat", 100_000));
    const outcome = streamOutcome(call);
    await new Promise<void>((resolve) => call.once("data", () => resolve()));
    const crashed = node.runtime.engine.runnerPid()!;
    process.kill(crashed, "SIGKILL");

    const { error } = await outcome;
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(errorInfoOf(error!)).toMatchObject({ reason: "ENGINE_CRASHED", metadata: { model_id: "tiny-chat" } });
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

    expect(errorInfoOf((await embedding) as grpc.ServiceError)).toMatchObject({ reason: "ENGINE_CRASHED", metadata: { model_id: TINY_EMBED_ID } });
    expect(events.some((e) => e.type === "transfer-finished" && e.modelId === TINY_EMBED_ID)).toBe(false);
    await waitFor(() => events.some((e) => e.type === "transfer-finished" && e.modelId === TINY_EMBED_ID));
    expect(await modelState(TINY_EMBED_ID)).toBe(ModelState.READY);
    throttle?.remove();
  });

  it("marks a model whose load crashes the runner FAILED, backs off, keeps it FAILED after a second crash, and keeps serving another model", async () => {
    const loadsOfCrash = () => events.filter((e) => e.type === "load-started" && e.modelId === CRASH_ID).length;
    const stopAborting = abortRunnerOn("load-started", CRASH_ID);

    const first = await streamOutcome(inference.stream<ChatResponse>("chat", chatRequest(CRASH_ID, 4)));
    expect(first.error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(errorInfoOf(first.error!)).toMatchObject({ reason: "ENGINE_CRASHED", metadata: { model_id: CRASH_ID } });
    expect(loadsOfCrash()).toBe(1);
    const failed = await rw.getModel(CRASH_ID);
    expect(failed.state).toBe(ModelState.FAILED);
    expect(failed.failureReason).toContain("crashed the inference runner");
    expect(failed.failureReason).toContain("signal SIGABRT");

    // Within the backoff the model is refused without touching the runner.
    const refused = await streamOutcome(inference.stream<ChatResponse>("chat", chatRequest(CRASH_ID, 4)));
    expect(errorInfoOf(refused.error!)).toMatchObject({ reason: "ENGINE_CRASHED", metadata: { model_id: CRASH_ID } });
    expect(errorInfoOf(refused.error!)?.metadata.retry_after_seconds, refused.error!.details).toMatch(/^[12]$/);
    expect(loadsOfCrash()).toBe(1);
    await expectServes("tiny-chat");

    // After the backoff it is tried once more; the second crash of the same file keeps it FAILED.
    await delay(BACKOFF_SECONDS * 1000 + 100);
    const second = await streamOutcome(inference.stream<ChatResponse>("chat", chatRequest(CRASH_ID, 4)));
    expect(errorInfoOf(second.error!)).toMatchObject({ reason: "ENGINE_CRASHED" });
    expect(loadsOfCrash()).toBe(2);
    await expectServes("tiny-chat");

    await delay(BACKOFF_SECONDS * 1000 + 100);
    const kept = await streamOutcome(inference.stream<ChatResponse>("chat", chatRequest(CRASH_ID, 4)));
    expect(kept.error?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(errorInfoOf(kept.error!)).toMatchObject({ reason: "INVALID_MODEL_FILE", metadata: { model_id: CRASH_ID, cause: "ENGINE_CRASHED" } });
    expect(kept.error!.details).toContain("twice");
    expect(loadsOfCrash()).toBe(2);
    expect((await rw.getModel(CRASH_ID)).state).toBe(ModelState.FAILED);

    // An operator's LoadModel is a retry: it loads (and crashes) once more.
    const retried = await inference.unary("loadModel", { modelId: CRASH_ID }).catch((e: grpc.ServiceError) => e);
    expect(errorInfoOf(retried as grpc.ServiceError)).toMatchObject({ reason: "ENGINE_CRASHED" });
    expect(loadsOfCrash()).toBe(3);
    stopAborting();
    await expectServes("tiny-chat");
  }, 240_000); // four runner starts: seconds each on a busy 2-core machine

  it("marks a model that loads and then aborts the runner at its first request FAILED and backs off, instead of crashing on every request", async () => {
    const stopAborting = abortRunnerOn("loaded", ABORT_ID);
    const first = await streamOutcome(inference.stream<ChatResponse>("chat", chatRequest(ABORT_ID, 100_000)));
    stopAborting();
    expect(errorInfoOf(first.error!)).toMatchObject({ reason: "ENGINE_CRASHED", metadata: { model_id: ABORT_ID } });
    expect(events.some((e) => e.type === "loaded" && e.modelId === ABORT_ID)).toBe(true);
    const failed = await rw.getModel(ABORT_ID);
    expect(failed.state).toBe(ModelState.FAILED);
    expect(failed.failureReason).toContain("the first request to");
    expect(failed.failureReason).toContain("SIGABRT");

    // Within the backoff it is refused without loading it again, and the runner serves the others.
    const loadsOfAbort = () => events.filter((e) => e.type === "load-started" && e.modelId === ABORT_ID).length;
    const refused = await streamOutcome(inference.stream<ChatResponse>("chat", chatRequest(ABORT_ID, 4)));
    expect(errorInfoOf(refused.error!)).toMatchObject({ reason: "ENGINE_CRASHED", metadata: { model_id: ABORT_ID } });
    expect(errorInfoOf(refused.error!)?.metadata.retry_after_seconds).toMatch(/^[12]$/);
    expect(loadsOfAbort()).toBe(1);
    await expectServes("tiny-chat");
  }, 120_000);

  it("does not blame a model for a runner killed from outside (SIGKILL, as the OOM killer does) under its first request", async () => {
    await inference.unary("unloadModel", { modelId: "tiny-chat" });
    const killOnLoad = node.runtime.events.on((e) => {
      if (e.type === "loaded" && e.modelId === "tiny-chat") process.kill(node.runtime.engine.runnerPid()!, "SIGKILL");
    });
    const first = await streamOutcome(inference.stream<ChatResponse>("chat", chatRequest("tiny-chat", 100_000)));
    killOnLoad();
    expect(errorInfoOf(first.error!)).toMatchObject({ reason: "ENGINE_CRASHED" });
    expect(await modelState("tiny-chat")).toBe(ModelState.READY);
    await expectServes("tiny-chat");
  }, 120_000);
});

async function waitFor(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await delay(20);
  }
}



async function expectServes(modelId: string): Promise<void> {
  const outcome = await streamOutcome(inference.stream<ChatResponse>("chat", chatRequest(modelId, 4)));
  expect(outcome.error).toBeUndefined();
  expect(outcome.last?.usage?.completionTokens).toBe(4);
}



async function modelState(modelId: string): Promise<ModelState> {
  return (await rw.getModel(modelId)).state;
}

