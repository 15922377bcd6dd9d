import { LlamaChat } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHATML_TEMPLATE } from "../../../testkit/gguf/tiny-gguf.js";
import { collect, engineFixture, reasonOf, user, type EngineFixture } from "./fixtures/engine-fixtures.js";

// A different template than the GGUF's own ChatML: plain "role: content" lines.
const PLAIN_TEMPLATE =
  "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}";

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

let fx: EngineFixture;

/** The same greedy chat through node-llama-cpp itself (a model of its own, no streaming). */
async function direct(content: string, maxTokens: number) {
  const llama = await fx.engine.llama();
  const model = await llama.loadModel({ modelPath: fx.modelPath });
  const context = await model.createContext({ contextSize: 1024, threads: 1 });
  try {
    const chat = new LlamaChat({ contextSequence: context.getSequence() });
    const history = [{ type: "user" as const, text: content }, { type: "model" as const, response: [] }];
    const { response } = await chat.generateResponse(history, { temperature: 0, maxTokens, repeatPenalty: false });
    const rendered = chat.chatWrapper.generateContextState({ chatHistory: history }).contextText;
    return { response, promptTokens: rendered.tokenize(model.tokenizer).length, prompt: rendered.toString() };
  } finally {
    await context.dispose();
    await model.dispose();
  }
}
beforeAll(async () => {
  fx = engineFixture({
    models: {
      tiny: {},
      "tiny-plain": { entry: { chatTemplate: PLAIN_TEMPLATE } },
      "tiny-embed": { entry: { capabilities: ["embeddings"] } },
      "tiny-absent": { file: null },
      "tiny-bad-template": { entry: { chatTemplate: "{% for m in messages %}{{ m['content'] }" } },
    },
  });
  await fx.engine.load({ modelId: "tiny" });
});
afterAll(() => fx.cleanup());

const greedy = (content: string, maxTokens = 48) => ({ modelId: "tiny", messages: user(content), temperature: 0, maxTokens });

describe("chat generation", () => {
  it("gives identical greedy output on every run", async () => {
    const a = await collect(fx.engine.chat(greedy("Hello world")));
    const b = await collect(fx.engine.chat(greedy("Hello world")));
    expect(a.text.length).toBeGreaterThan(0);
    expect(b.text).toBe(a.text);
  });

  it("matches node-llama-cpp called directly, without adding a system prompt", async () => {
    const ours = await collect(fx.engine.chat(greedy("Hello world")));
    const { response, promptTokens, prompt } = await direct("Hello world", 48);
    expect(ours.text).toBe(response);
    // BOS + "<|im_start|>user\nHello world<|im_end|>\n<|im_start|>assistant\n" and nothing else.
    expect(ours.end.usage.promptTokens).toBe(promptTokens);
    expect(prompt).not.toMatch(/system/);
  });

  it("reproduces seeded sampling, and different seeds differ", async () => {
    const sampled = (seed: number) =>
      collect(fx.engine.chat({ modelId: "tiny", messages: user("Tell me"), temperature: 1, topK: 40, topP: 0.95, seed, maxTokens: 32 }));
    const [a, b, c] = [await sampled(7), await sampled(7), await sampled(8)];
    expect(b.text).toBe(a.text);
    expect(c.text).not.toBe(a.text);
  });

  it("stops at max_tokens with finish reason length and counts usage", async () => {
    const { end } = await collect(fx.engine.chat(greedy("Count", 12)));
    expect(end.finishReason).toBe("length");
    expect(end.usage.completionTokens).toBe(12);
    expect(end.usage.promptTokens).toBeGreaterThan(5);
    expect(end.usage.totalTokens).toBe(end.usage.promptTokens + 12);
  });

  it("stops before a stop string with finish reason stop", async () => {
    const full = await collect(fx.engine.chat(greedy("Hello world", 64)));
    // A piece from the middle of the greedy answer, free of replacement characters.
    const stop = [...full.text.matchAll(/[a-z]{3,}/g)].map((m) => m[0]).find((w, i) => i > 1 && full.text.indexOf(w) > 5);
    expect(stop).toBeDefined();
    const stopped = await collect(fx.engine.chat({ ...greedy("Hello world", 64), stop: [stop!] }));
    expect(stopped.end.finishReason).toBe("stop");
    expect(stopped.text).toBe(full.text.slice(0, full.text.indexOf(stop!)));
  });

  it("streams deltas that are whole characters and add up to the unsplit answer", async () => {
    // The fixture sends every token as it comes (streamIntervalMs 0): 400 tokens arrive as many deltas.
    const streamed = await collect(fx.engine.chat(greedy("Hello world", 400)));
    expect(streamed.deltas.length).toBeGreaterThan(10);
    // The tiny vocabulary has multi-byte pieces (東, é, €, …) and lone UTF-8 bytes; some deltas carry them.
    expect(streamed.deltas.filter((d) => /[\u0080-\uffff]/.test(d)).length).toBeGreaterThan(3);
    for (const delta of streamed.deltas) expect(LONE_SURROGATE.test(delta)).toBe(false);
    // node-llama-cpp detokenizing the whole answer at once: splitting added no replacement characters.
    expect(streamed.text).toBe((await direct("Hello world", 400)).response);
  });

  it("joins text generated faster than the stream interval into fewer deltas, losing nothing", async () => {
    const paced = engineFixture({ models: { tiny: {} }, settings: { streamIntervalMs: 500 }, llama: await fx.engine.llama() });
    try {
      const started = performance.now();
      const streamed = await collect(paced.engine.chat(greedy("Hello world", 300)));
      const elapsedMs = performance.now() - started;
      expect(streamed.end.usage.completionTokens).toBe(300);
      // The first delta goes out at once, then at most one per interval.
      expect(streamed.deltas.length).toBeLessThanOrEqual(2 + Math.floor(elapsedMs / 500));
      expect(streamed.deltas.length).toBeLessThan(300);
      expect(streamed.text).toBe((await direct("Hello world", 300)).response);
    } finally {
      await paced.cleanup();
    }
  });

  it("refuses a catalog chat template that does not render, naming the setting", async () => {
    const failure = await reasonOf(collect(fx.engine.chat({ ...greedy("x"), modelId: "tiny-bad-template" })));
    expect(failure.reason).toBe("INVALID_CONFIG");
    expect(failure.message).toMatch(/chat_template of model "tiny-bad-template"/);
    expect(fx.engine.list().map((m) => m.modelId)).not.toContain("tiny-bad-template");
  });

  it("uses the catalog's chat template over the GGUF's own", async () => {
    const ours = await collect(fx.engine.chat({ ...greedy("Hello world"), modelId: "tiny-plain" }));
    const ggufs = await collect(fx.engine.chat(greedy("Hello world")));
    expect(ours.text).not.toBe(ggufs.text);
    expect(ours.end.usage.promptTokens).not.toBe(ggufs.end.usage.promptTokens);
    expect(PLAIN_TEMPLATE).not.toBe(CHATML_TEMPLATE);
  });

  it("keeps the conversation roles: system and assistant turns change the prompt", async () => {
    const plain = await collect(fx.engine.chat(greedy("Hi")));
    const withTurns = await collect(
      fx.engine.chat({
        ...greedy("Hi"),
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "Hello" },
          { role: "assistant", content: "Hello there" },
          { role: "user", content: "Hi" },
        ],
      }),
    );
    expect(withTurns.end.usage.promptTokens).toBeGreaterThan(plain.end.usage.promptTokens + 10);
  });
});

describe("completion", () => {
  it("completes raw text greedily and reproducibly, with usage", async () => {
    const request = { modelId: "tiny", prompt: "The capital of France is", temperature: 0, maxTokens: 16 };
    const a = await collect(fx.engine.complete(request));
    const b = await collect(fx.engine.complete(request));
    expect(a.text).toBe(b.text);
    expect(a.end).toMatchObject({ finishReason: "length", usage: { completionTokens: 16 } });
    expect(a.end.usage.promptTokens).toBeGreaterThan(3);
  });
});

describe("embeddings", () => {
  it("returns one vector per input with the model's dimension", async () => {
    const result = await fx.engine.embed({ modelId: "tiny-embed", inputs: ["hello", "world peace"] });
    expect(result.dimensions).toBe(64);
    expect(result.embeddings).toHaveLength(2);
    for (const vector of result.embeddings) expect(vector).toHaveLength(64);
    expect(result.embeddings[0]).not.toEqual(result.embeddings[1]);
    expect(result.usage.promptTokens).toBeGreaterThan(1);
  });

  it("refuses models without the embeddings capability", async () => {
    expect(await reasonOf(fx.engine.embed({ modelId: "tiny", inputs: ["x"] }))).toMatchObject({ reason: "CAPABILITY_MISSING" });
    expect(await reasonOf(collect(fx.engine.chat({ ...greedy("x"), modelId: "tiny-embed" })))).toMatchObject({
      reason: "CAPABILITY_MISSING",
    });
  });
});

describe("request checks", () => {
  it.each([
    [{ maxTokens: 0 }, "max_tokens"],
    [{ temperature: 2.5 }, "temperature"],
    [{ topP: 1.5 }, "top_p"],
    [{ topK: -1 }, "top_k"],
    [{ messages: [] }, "messages"],
    [{ messages: [{ role: "robot", content: "beep" }] }, "messages[0].role"],
    [{ modelId: "" }, "model_id"],
    [{ stop: [""] }, "stop[0]"],
  ])("rejects %o as INVALID_ARGUMENT naming %s", async (patch, field) => {
    const result = await reasonOf(collect(fx.engine.chat({ ...greedy("x"), ...patch })));
    expect(result.reason).toBe("INVALID_ARGUMENT");
    expect(result.metadata.field).toBe(field);
    expect(result.message.startsWith(field)).toBe(true);
  });

  it("refuses a prompt longer than the context instead of cutting it", async () => {
    const failure = await reasonOf(collect(fx.engine.chat({ ...greedy("x ".repeat(1100)) })));
    expect(failure).toMatchObject({ reason: "INVALID_ARGUMENT", metadata: { field: "messages" } });
    expect(failure.message).toMatch(/the prompt has (more than )?\d+ tokens and at most 1022 fit/);
    const completion = await reasonOf(collect(fx.engine.complete({ modelId: "tiny", prompt: "x ".repeat(1100), maxTokens: 4 })));
    expect(completion).toMatchObject({ reason: "INVALID_ARGUMENT", metadata: { field: "prompt" } });
  });

  it("refuses a chat prompt that leaves fewer than two tokens free, which LlamaChat would have cut at its start", async () => {
    const chat = (words: number) => collect(fx.engine.chat({ ...greedy("x ".repeat(words)), maxTokens: 1 }));
    const refusals = new Map<number, string>();
    let accepted: number | undefined;
    for (let words = 1024; accepted === undefined; words--) {
      const result = await chat(words).catch((err: unknown) => err as Error);
      if (result instanceof Error) {
        const reason = await reasonOf(Promise.reject(result));
        refusals.set(Number(reason.metadata.prompt_tokens ?? Infinity), reason.message);
      } else accepted = result.end.usage.promptTokens;
    }
    // Before, 1023 tokens were taken, and LlamaChat dropped the start of the conversation to make room.
    expect(accepted).toBe(1022);
    expect(refusals.get(1023)).toMatch(/^messages: the prompt has 1023 tokens and at most 1022 fit \(the model's context is 1024 tokens per request, two kept free\)/);
  });

  it("refuses a prompt far beyond the context before rendering or tokenizing it whole", async () => {
    const chat = await reasonOf(collect(fx.engine.chat({ ...greedy("hello world ".repeat(80_000)) })));
    expect(chat).toMatchObject({ reason: "INVALID_ARGUMENT", metadata: { field: "messages" } });
    expect(chat.message).toBe(
      "messages: the prompt has more than 1023 tokens and at most 1022 fit (the model's context is 1024 tokens per request, two kept free); shorten it, or give the model a larger context_length / LLMLB_CONTEXT_SIZE",
    );
    const completion = await reasonOf(collect(fx.engine.complete({ modelId: "tiny", prompt: "x".repeat(900_000), maxTokens: 4 })));
    expect(completion).toMatchObject({ reason: "INVALID_ARGUMENT", metadata: { field: "prompt" } });
  });

  it("answers NOT_FOUND for ids outside the catalog and MODEL_NOT_READY for no_wait on a missing file", async () => {
    expect(await reasonOf(collect(fx.engine.chat({ ...greedy("x"), modelId: "nope" })))).toMatchObject({ reason: "MODEL_NOT_SUPPORTED" });
    const absent = await reasonOf(collect(fx.engine.chat({ ...greedy("x"), modelId: "tiny-absent", noWait: true })));
    expect(absent).toMatchObject({ reason: "MODEL_NOT_READY" });
    expect(absent.message).toMatch(/no_wait/);
  });
});

describe("loaded models", () => {
  it("lists memory, parallelism, adapter sets and the backend", async () => {
    const [info] = fx.engine.list().filter((m) => m.modelId === "tiny");
    expect(info).toMatchObject({ modelId: "tiny", parallelism: 4, activeRequests: 0, queuedRequests: 0, adapterSets: [""], gpu: "cpu" });
    expect(info!.memoryBytes).toBeGreaterThan(800_000);
    expect(info!.generatedTokens).toBeGreaterThan(0);
    expect(fx.events).toContainEqual({ type: "loaded", modelId: "tiny" });
  });
});
