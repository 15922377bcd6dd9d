import fs from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChatResponse } from "../src/gen/llmlb/node/v1/inference_pb.js";
import { allowedCpus } from "../src/host/cpu-affinity.js";
import { streamOutcome } from "../../../testkit/node/index.js";
import { chatRequest, startRunnerWorld, type RunnerWorld } from "./fixtures/runner-world.js";
import { tinyChat } from "../../../testkit/world/tiny-world.js";

/** The CPU list of every thread of a process, as Linux reports it. */
function threadCpuLists(pid: number): string[] {
  return fs.readdirSync(`/proc/${pid}/task`).map((tid) => /Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8"))![1]!);
}

const linux = process.platform === "linux";
const lastCpu = String(allowedCpus().at(-1));
let rw: RunnerWorld;

beforeAll(async () => {
  if (linux) rw = await startRunnerWorld({ id: "tiny-other", repo: "llmlb-test/other-GGUF", file: "other.gguf", bytes: tinyChat }, { LLMLB_RUNNER_CPUS: lastCpu });
});
afterAll(() => rw?.close());

describe.skipIf(!linux)("LLMLB_RUNNER_CPUS", () => {
  it("runs the inference runner, every thread of it and its restarts, on those CPUs only, and leaves the node's own CPUs alone", async () => {
    const answer = await streamOutcome(rw.inference.stream<ChatResponse>("chat", chatRequest("tiny-chat", 8)));
    expect(answer.last).toMatchObject({ finishReason: "length", usage: { completionTokens: 8 } });
    const first = rw.node.runtime.engine.runnerPid()!;
    const lists = threadCpuLists(first);
    expect(lists.length).toBeGreaterThan(4); // llama.cpp's and libuv's threads, not only the main one
    expect(new Set(lists)).toEqual(new Set([lastCpu]));
    expect(threadCpuLists(process.pid)).toContain(fs.readFileSync("/proc/self/status", "utf8").match(/Cpus_allowed_list:\s*(\S+)/)![1]);

    process.kill(first, "SIGKILL");
    // The node restarts a runner that had served calls at once; requests meanwhile get ENGINE_CRASHED.
    for (let waited = 0; rw.node.runtime.engine.runnerPid() === first || rw.node.runtime.engine.runnerPid() === undefined; waited += 50) {
      expect(waited).toBeLessThan(30_000);
      await delay(50);
    }
    const again = await streamOutcome(rw.inference.stream<ChatResponse>("chat", chatRequest("tiny-chat", 8)));
    expect(again.error).toBeUndefined();
    const restarted = rw.node.runtime.engine.runnerPid()!;
    expect(restarted).not.toBe(first);
    expect(new Set(threadCpuLists(restarted))).toEqual(new Set([lastCpu]));
  });
});
