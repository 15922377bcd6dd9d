import { setTimeout as delay } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Llama } from "node-llama-cpp";
import type { GenerationEvent, InferenceEngine } from "../src/index.js";
import { ModelEvents, silentLogger } from "../src/index.js";
import { ModelPool } from "../src/engine/model-pool.js";
import { collect, engineFixture, entry, reasonOf, truncatedModel, user, type EngineFixture } from "./fixtures/engine-fixtures.js";

const chatRequest = (modelId: string, maxTokens: number, content = "Hello world") => ({
  modelId,
  messages: user(content),
  temperature: 0,
  maxTokens,
});

/** Starts a stream and resolves once its first delta arrived; the rest is left to the caller. */
async function started(events: AsyncGenerator<GenerationEvent>): Promise<{ done: Promise<unknown> }> {
  const first = await events.next();
  expect(first.value).toMatchObject({ type: "delta" });
  return { done: collect(events).catch((err: unknown) => err) };
}

const generated = (engine: InferenceEngine, id: string) => engine.list().find((m) => m.modelId === id)?.generatedTokens ?? 0;

let fx: EngineFixture;
let llama: Llama;
/** A second engine with other settings, sharing the first one's llama.cpp. */
const another = (options: Omit<Parameters<typeof engineFixture>[0], "llama">) => engineFixture({ ...options, llama });
beforeAll(async () => {
  fx = engineFixture({
    models: { tiny: {}, solo: {}, styled: {} },
    adapters: ["style-a"],
    settings: { parallelism: 4, queueSize: 8 },
  });
  await fx.engine.load({ modelId: "tiny" });
  llama = await fx.engine.llama();
});
afterAll(() => fx.cleanup());

describe("parallel requests", () => {
  it("completes 8 parallel chats on 4 sequences plus the queue, each with its own greedy answer", async () => {
    const prompts = ["a", "b", "c", "d", "e", "f", "g", "h"].map((p) => `Tell me about ${p}`);
    const results = await Promise.all(prompts.map((p) => collect(fx.engine.chat(chatRequest("tiny", 24, p)))));
    for (const result of results) expect(result.end).toMatchObject({ finishReason: "length", usage: { completionTokens: 24 } });
    // Sequences do not leak into each other: each answer equals the same prompt run alone.
    expect((await collect(fx.engine.chat(chatRequest("tiny", 24, prompts[5])))).text).toBe(results[5]!.text);
    expect(fx.engine.list().find((m) => m.modelId === "tiny")).toMatchObject({ activeRequests: 0, queuedRequests: 0 });
  });
});

describe("a request arriving while others generate", () => {
  it("starts at once on a sequence that still holds an earlier answer, not once the others have ended", async () => {
    // Every sequence holds an earlier answer, which the next request on it must first drop.
    await Promise.all(["w", "x", "y", "z"].map((p) => collect(fx.engine.chat(chatRequest("tiny", 8, `Warm up ${p}`)))));
    const ended: number[] = [];
    const running = await Promise.all([1, 2, 4].map((i) => started(fx.engine.chat(chatRequest("tiny", 400, `Tell me a long story, number ${i}`)))));
    running.forEach((run, i) => void run.done.then(() => ended.push(i)));

    const late = fx.engine.chat(chatRequest("tiny", 4, "A question that arrives late"));
    expect((await late.next()).value).toMatchObject({ type: "delta" });
    // node-llama-cpp's batch loop kept the context's lock while any sequence generated, and the late
    // request waited for all three (patches/node-llama-cpp+3.22.1.patch).
    expect(ended).toEqual([]);
    await collect(late);
    for (const run of running) expect(await run.done).toMatchObject({ end: { usage: { completionTokens: 400 } } });
  });
});

describe("queue", () => {
  it("answers QUEUE_FULL with a retry hint once parallelism and queue are taken", async () => {
    const small = another({ models: { tiny: {} }, settings: { parallelism: 1, queueSize: 1 } });
    try {
      const controller = new AbortController();
      const running = await started(small.engine.chat(chatRequest("tiny", 100_000), { signal: controller.signal }));
      const queued = collect(small.engine.chat(chatRequest("tiny", 4), { signal: controller.signal })).catch((err: unknown) => err);
      await delay(20);
      expect(small.engine.list()[0]).toMatchObject({ activeRequests: 1, queuedRequests: 1 });
      const refused = await reasonOf(collect(small.engine.chat(chatRequest("tiny", 4))));
      expect(refused.reason).toBe("QUEUE_FULL");
      expect(refused.message).toMatch(/retry later/);
      expect(Number(refused.metadata.retry_after_seconds)).toBeGreaterThanOrEqual(1);
      controller.abort();
      await Promise.all([running.done, queued]);
      expect(small.engine.list()[0]).toMatchObject({ activeRequests: 0, queuedRequests: 0 });
    } finally {
      await small.cleanup();
    }
  });
});

describe("cancellation", () => {
  it("stops producing tokens as soon as the caller aborts", async () => {
    const controller = new AbortController();
    const events = fx.engine.chat(chatRequest("tiny", 100_000), { signal: controller.signal });
    const running = await started(events);
    controller.abort();
    expect(await running.done).toMatchObject({ name: "AbortError" });
    const atAbort = generated(fx.engine, "tiny");
    await delay(300);
    // At ~1,000 tokens/s a generation that went on would have added hundreds by now.
    expect(generated(fx.engine, "tiny")).toBe(atAbort);
    expect(fx.engine.list().find((m) => m.modelId === "tiny")).toMatchObject({ activeRequests: 0 });
  });

  it("stops when the reader stops reading (a closed stream)", async () => {
    for await (const event of fx.engine.chat(chatRequest("tiny", 100_000))) {
      expect(event.type).toBe("delta");
      break;
    }
    const atBreak = generated(fx.engine, "tiny");
    await delay(300);
    expect(generated(fx.engine, "tiny")).toBe(atBreak);
  });

  it("frees the slot when the caller aborts without ever reading again", async () => {
    const controller = new AbortController();
    const events = fx.engine.chat(chatRequest("tiny", 100_000), { signal: controller.signal });
    await events.next();
    controller.abort();
    await expect.poll(() => fx.engine.list().find((m) => m.modelId === "tiny")?.activeRequests, { timeout: 2_000, interval: 20 }).toBe(0);
    const atAbort = generated(fx.engine, "tiny");
    await delay(200);
    expect(generated(fx.engine, "tiny")).toBe(atAbort);
  });

  it("frees the slot when generation ends, even if the reader is slow to take the rest", async () => {
    const events = fx.engine.chat(chatRequest("tiny", 40));
    await events.next();
    await expect.poll(() => fx.engine.list().find((m) => m.modelId === "tiny")?.activeRequests, { timeout: 2_000, interval: 20 }).toBe(0);
    const rest = await collect(events);
    expect(rest.end).toMatchObject({ finishReason: "length", usage: { completionTokens: 40 } });
  });

  it("leaves the queue when a waiting caller gives up", async () => {
    const small = another({ models: { tiny: {} }, settings: { parallelism: 1, queueSize: 4 } });
    try {
      const first = new AbortController();
      const running = await started(small.engine.chat(chatRequest("tiny", 100_000), { signal: first.signal }));
      const waiting = new AbortController();
      const queued = collect(small.engine.chat(chatRequest("tiny", 4), { signal: waiting.signal })).catch((err: unknown) => err);
      await delay(20);
      waiting.abort();
      expect(await queued).toMatchObject({ name: "AbortError" });
      expect(small.engine.list()[0]).toMatchObject({ queuedRequests: 0 });
      first.abort();
      await running.done;
    } finally {
      await small.cleanup();
    }
  });
});

describe("LoRA adapters", () => {
  it("changes the output, with one context per adapter set", async () => {
    const plain = await collect(fx.engine.chat(chatRequest("styled", 32)));
    const styled = await collect(fx.engine.chat({ ...chatRequest("styled", 32), adapterIds: ["style-a"] }));
    const again = await collect(fx.engine.chat({ ...chatRequest("styled", 32), adapterIds: ["style-a", "style-a"] }));
    expect(styled.text).not.toBe(plain.text);
    expect(again.text).toBe(styled.text);
    expect(fx.engine.list().find((m) => m.modelId === "styled")?.adapterSets).toEqual(["", "style-a"]);
  });

  it("answers ADAPTER_NOT_FOUND for an adapter that is not on disk", async () => {
    const failure = await reasonOf(collect(fx.engine.chat({ ...chatRequest("styled", 4), adapterIds: ["missing"] })));
    expect(failure).toMatchObject({ reason: "ADAPTER_NOT_FOUND", metadata: { adapter_id: "missing" } });
  });
});

describe("broken model files", () => {
  it("refuses a truncated GGUF with a clear error and keeps serving", async () => {
    const broken = another({
      models: { broken: { file: truncatedModel(fx.home, 400_000) }, tiny: {} },
    });
    try {
      const failure = await reasonOf(collect(broken.engine.chat(chatRequest("broken", 4))));
      expect(failure.reason).toBe("INVALID_MODEL_FILE");
      expect(failure.message).toMatch(/truncated .*400000 bytes/);
      expect(broken.events).toContainEqual(expect.objectContaining({ type: "load-failed", modelId: "broken", code: "INVALID_MODEL_FILE" }));
      const after = await collect(broken.engine.chat(chatRequest("tiny", 8)));
      expect(after.end.finishReason).toBe("length");
    } finally {
      await broken.cleanup();
    }
  });
});

describe("memory budget", () => {
  it("evicts the least recently used idle model, never a busy one", async () => {
    // Weights ≈ 0.85 MB, one context of 4 × 1024 tokens ≈ 5.4 MB: room for one model, not two.
    const tight = another({ models: { a: {}, b: {}, c: {} }, settings: { memoryBudget: 9 * 1024 * 1024 } });
    try {
      await collect(tight.engine.chat(chatRequest("a", 4)));
      await collect(tight.engine.chat(chatRequest("b", 4)));
      expect(tight.engine.list().map((m) => m.modelId)).toEqual(["b"]);
      expect(tight.events).toContainEqual({ type: "unloaded", modelId: "a" });

      const controller = new AbortController();
      const busy = await started(tight.engine.chat(chatRequest("b", 100_000), { signal: controller.signal }));
      const refused = await reasonOf(collect(tight.engine.chat(chatRequest("c", 4))));
      expect(refused.reason).toBe("INSUFFICIENT_MEMORY");
      expect(refused.message).toMatch(/retry later/);
      controller.abort();
      await busy.done;
      await collect(tight.engine.chat(chatRequest("c", 4)));
      expect(tight.engine.list().map((m) => m.modelId)).toEqual(["c"]);
    } finally {
      await tight.cleanup();
    }
  });

  it("refuses a model that can never fit, naming the budget setting", async () => {
    const tiny = another({ models: { a: {} }, settings: { memoryBudget: 1024 * 1024 } });
    try {
      const refused = await reasonOf(collect(tiny.engine.chat(chatRequest("a", 4))));
      expect(refused.reason).toBe("INSUFFICIENT_MEMORY");
      expect(refused.message).toMatch(/LLMLB_MEMORY_BUDGET/);
    } finally {
      await tiny.cleanup();
    }
  });
});

describe("load and unload", () => {
  it("unloads idle models, refuses busy ones, and reports models that were not loaded", async () => {
    await fx.engine.load({ modelId: "solo" });
    expect(fx.engine.list().map((m) => m.modelId)).toContain("solo");
    const controller = new AbortController();
    const busy = await started(fx.engine.chat(chatRequest("solo", 100_000), { signal: controller.signal }));
    expect(await reasonOf(fx.engine.unload("solo"))).toMatchObject({ reason: "MODEL_IN_USE" });
    controller.abort();
    await busy.done;
    expect(await fx.engine.unload("solo")).toBe(true);
    expect(await fx.engine.unload("solo")).toBe(false);
    expect(fx.engine.list().map((m) => m.modelId)).not.toContain("solo");
    expect(fx.events).toContainEqual({ type: "unloaded", modelId: "solo" });
  });

  /**
   * The pool runs allocations, evictions and unloads one at a time; while another model's load
   * holds that queue, a request may take a model an unload or an expiry is waiting to remove. The
   * queue is held here by an allocation whose work the test finishes when it chooses.
   */
  function heldPool() {
    const pool = new ModelPool({ llama: async () => llama, budget: 1024 ** 3, parallelism: 2, queueSize: 4, threads: 1, contextSize: 1024, keepAliveMs: -1, events: new ModelEvents(), logger: silentLogger() });
    const located = { id: "a", path: fx.modelPath, entry: entry("a") };
    let finish!: () => void;
    /** Resolves once the holding allocation runs, with the promise of its end. */
    const hold = () =>
      new Promise<{ done: Promise<void> }>((running) => {
        const done = pool.allocate(0, "other", () => new Promise<void>((resolve) => {
          finish = resolve;
          running({ done });
        }));
      });
    return { pool, lease: () => pool.lease(located, new AbortController().signal), hold, finish: () => finish() };
  }

  it("refuses an unload that waited its turn once a request took the model meanwhile (it was unloaded under the request)", async () => {
    const { pool, lease, hold, finish } = heldPool();
    try {
      pool.release(await lease());
      const held = await hold();
      const unload = pool.unload("a").catch((err: unknown) => err);
      await delay(1); // the unload has looked at the model (idle then) and waits for its turn
      const serving = await lease();
      finish();
      await held.done;
      expect(await unload).toMatchObject({ reason: "MODEL_IN_USE" });
      expect(pool.list()).toContain(serving);
      pool.release(serving);
    } finally {
      await pool.close();
    }
  });

  it("lets the last request's keep-alive decide: an expiry waiting its turn does not unload a model a later request pinned with -1", async () => {
    const { pool, lease, hold, finish } = heldPool();
    try {
      const model = await lease();
      const held = await hold();
      pool.release(model, 1);
      await delay(30); // its expiry has fired and now waits behind the held queue
      pool.release(await lease(), -1);
      finish();
      await held.done;
      await delay(50);
      expect(pool.list()).toContain(model);
      expect(model.expiresAt).toBeUndefined();
    } finally {
      await pool.close();
    }
  });

  it("keep_alive 0 unloads a model once it has been idle for a moment, not between requests that follow each other", async () => {
    const { pool, lease } = heldPool();
    try {
      const model = await lease();
      pool.release(model, 0);
      await delay(50); // the next wave of a multi-prompt completion, a client's next request
      const again = await lease();
      expect(again).toBe(model);
      pool.release(again, 0);
      expect(pool.list()).toContain(model);
      await expect.poll(() => pool.list(), { timeout: 5_000 }).not.toContain(model);
    } finally {
      await pool.close();
    }
  });

  it("keeps a context that a request holds but has not taken a sequence of yet, when room is made for another adapter set", async () => {
    const { pool, lease } = heldPool();
    try {
      const model = await lease();
      const claim = model.claimSequencePool({ key: "set-1", adapters: [] });
      const contexts = await claim.pool;
      // What making room does: dispose the contexts of other adapter sets that look idle.
      expect(await model.disposeIdleContexts("")).toBe(0);
      const taken = contexts.take([]);
      expect(taken.sequence.disposed).toBe(false);
      contexts.give(taken.sequence);
      claim.release();
      expect(await model.disposeIdleContexts("")).toBeGreaterThan(0);
      pool.release(model);
    } finally {
      await pool.close();
    }
  });

  it("refuses to unload a model while a load is still setting it up, saying so", async () => {
    expect(fx.engine.list().map((m) => m.modelId)).not.toContain("solo");
    const seen = fx.events.length;
    const loading = fx.engine.load({ modelId: "solo" });
    while (!fx.events.slice(seen).some((e) => e.type === "load-started")) await new Promise((r) => setTimeout(r, 1));
    const refused = await reasonOf(fx.engine.unload("solo"));
    expect(refused.reason).toBe("MODEL_IN_USE");
    expect(refused.message).toContain("is still being set up");
    await loading;
    expect(await fx.engine.unload("solo")).toBe(true);
  });
});
