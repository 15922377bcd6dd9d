import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelEvent } from "../src/index.js";
import { ModelState } from "../src/gen/llmlb/node/v1/model_pb.js";
import type { ChatResponse } from "../src/gen/llmlb/node/v1/inference_pb.js";
import { errorInfoOf, streamOutcome, type TestNode } from "../../../testkit/node/index.js";
import { chatRequest, startRunnerWorld, type RunnerWorld } from "./fixtures/runner-world.js";
import { tinyChat } from "../../../testkit/world/tiny-world.js";

/**
 * A runner that stops answering (here: SIGSTOP, which stands for a native deadlock or endless loop
 * and needs no crafted native code) is killed and replaced. The bounds are short so the test is;
 * loading the tiny model blocks the runner's thread for about a second on a busy machine, which
 * the load bound (not the hang bound) covers.
 */
const HANG_TIMEOUT_MS = 1_500;
const LOAD_HANG_TIMEOUT_MS = 4_000;
/** Detection takes up to one beat more than the bound; the rest is slack for a busy 2-core machine. */
const DETECTION_SLACK_MS = 10_000;
const HANG_REPO = "llmlb-test/hang-GGUF";
const HANG_ID = "tiny-hang";

let rw: RunnerWorld;
let node: TestNode;
let inference: RunnerWorld["inference"];
let events: ModelEvent[];

beforeAll(async () => {
  rw = await startRunnerWorld({ id: HANG_ID, repo: HANG_REPO, file: "hang.gguf", bytes: tinyChat }, { LLMLB_RUNNER_HANG_TIMEOUT: `${HANG_TIMEOUT_MS}ms`, LLMLB_RUNNER_LOAD_HANG_TIMEOUT: `${LOAD_HANG_TIMEOUT_MS}ms` });
  ({ node, inference, events } = rw);
});
afterAll(() => rw?.close());

describe("runner hang detection", () => {
  it("does not take a runner that loads models and generates for hung", async () => {
    await expectServes("tiny-chat", 200);
    const pid = node.runtime.engine.runnerPid();
    await inference.unary("embed", { modelId: "tiny-embed", inputs: ["x"] });
    await expectServes("tiny-chat", 200);
    expect(node.runtime.engine.runnerPid()).toBe(pid);
  }, 120_000);

  it("kills a runner stopped mid-stream: that client gets UNAVAILABLE / ENGINE_CRASHED with cause hang, the node keeps serving, the next request runs on a fresh runner", async () => {
    const call = inference.stream<ChatResponse>("chat", chatRequest("tiny-chat", 100_000));
    const outcome = streamOutcome(call);
    await new Promise<void>((resolve) => call.once("data", () => resolve()));
    const stopped = node.runtime.engine.runnerPid()!;
    const stoppedAt = Date.now();
    process.kill(stopped, "SIGSTOP");
    try {
      // The listeners and the catalog answer while the runner is stopped.
      expect((await rw.getModel("tiny-chat")).state).toBe(ModelState.LOADED);
      // Listing models asks the runner what is loaded: it answers once the hang is detected.
      const listed = fetch(`${node.httpUrl}/v1/models`);

      const { error } = await outcome;
      expect(Date.now() - stoppedAt).toBeLessThan(HANG_TIMEOUT_MS + DETECTION_SLACK_MS);
      expect(error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(errorInfoOf(error!)).toMatchObject({ reason: "ENGINE_CRASHED", metadata: { model_id: "tiny-chat", cause: "hang" } });
      expect(error!.details).toContain("answered no heartbeat for 1.5 s");
      expect((await listed).status).toBe(200);
    } finally {
      tryKill(stopped, "SIGCONT");
    }
    expect(await rw.getModel("tiny-chat")).toMatchObject({ state: ModelState.READY });

    await expectServes("tiny-chat", 8);
    expect(node.runtime.engine.runnerPid()).not.toBe(stopped);
  }, 120_000);

  it("treats a model whose load hangs the runner as a load crash: FAILED with the cause, refused during the backoff, other models keep serving", async () => {
    const stopOnLoad = (event: ModelEvent) => {
      if (event.type === "load-started" && event.modelId === HANG_ID) process.kill(node.runtime.engine.runnerPid()!, "SIGSTOP");
    };
    const stopListening = node.runtime.events.on(stopOnLoad);
    const first = await streamOutcome(inference.stream<ChatResponse>("chat", chatRequest(HANG_ID, 4)));
    stopListening();
    expect(first.error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(errorInfoOf(first.error!)).toMatchObject({ reason: "ENGINE_CRASHED", metadata: { model_id: HANG_ID, cause: "hang" } });
    expect(first.error!.details).toContain(`answered no heartbeat for ${LOAD_HANG_TIMEOUT_MS / 1000} s`);

    const failed = await rw.getModel(HANG_ID);
    expect(failed.state).toBe(ModelState.FAILED);
    expect(failed.failureReason).toContain("answered no heartbeat");

    const loads = () => events.filter((e) => e.type === "load-started" && e.modelId === HANG_ID).length;
    const refused = await streamOutcome(inference.stream<ChatResponse>("chat", chatRequest(HANG_ID, 4)));
    expect(errorInfoOf(refused.error!)).toMatchObject({ reason: "ENGINE_CRASHED", metadata: { model_id: HANG_ID } });
    expect(errorInfoOf(refused.error!)?.metadata.retry_after_seconds).toBeDefined();
    expect(loads()).toBe(1);
    await expectServes("tiny-chat", 4);
  }, 120_000);
});

function tryKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}



async function expectServes(modelId: string, tokens: number): Promise<void> {
  const outcome = await streamOutcome(inference.stream<ChatResponse>("chat", chatRequest(modelId, tokens)));
  expect(outcome.error).toBeUndefined();
  expect(outcome.last?.usage?.completionTokens).toBe(tokens);
}


