import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LoadedListJson, LoadedModelJson } from "../dashboard/src/types.js";
import { tinyModelBytes } from "../../../testkit/gguf/tiny-gguf.js";
import { resolveModel, startTestNode, type TestNode } from "../../../testkit/node/index.js";
import { startTinyWorld, tinyEntry, TINY_CHAT_ID, TINY_EMBED_ID, type TinyWorld } from "../../../testkit/world/tiny-world.js";

const LONG_ID = "tiny-long";
const LONG_FILE = "tiny-long-F32.gguf";
const LONG_REPO = "llmlb-test/tiny-long-GGUF";
const tinyLong = tinyModelBytes({ contextLength: 16_384 });
const RERANK_ID = "tiny-rerank";
const RERANK_FILE = "tiny-rerank-F32.gguf";
const RERANK_REPO = "llmlb-test/tiny-rerank-GGUF";
const tinyReranker = tinyModelBytes({ reranker: true });
const HEADLESS_RERANK_ID = "tiny-headless-rerank";

interface ChatAnswer {
  choices: Array<{ message: { content: string } }>;
  usage: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details: { cached_tokens: number } };
}


/** Serving behaviour of a node: context sizes, keep-alive, prompt-cache reuse, rerank and tokenize. */
describe("serving: context, keep-alive, prompt reuse, rerank, tokenize", () => {
  let world: TinyWorld;
  let node: TestNode;

  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${node.httpUrl}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const loaded = async (): Promise<LoadedModelJson[]> => {
    const res = await fetch(`${node.httpUrl}/v0/loaded`);
    return ((await res.json()) as LoadedListJson).models;
  };
  /** Polls until `check` holds, at most `ms`. */
  const eventually = async (check: () => Promise<boolean>, ms: number) => {
    const until = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > until) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
    return true;
  };
  const isLoaded = async (id: string) => (await loaded()).some((m) => m.id === id);
  const chat = (messages: Array<{ role: string; content: string }>, extra: Record<string, unknown> = {}) =>
    post("/v1/chat/completions", { model: TINY_CHAT_ID, messages, temperature: 0, max_tokens: 8, ...extra }) as Promise<{ status: number; json: ChatAnswer & Record<string, unknown> }>;

  beforeAll(async () => {
    world = await startTinyWorld({
      extraModels: [
        tinyEntry(LONG_ID, LONG_FILE, tinyLong, ["text-generation"], { context_length: 16_384, repo: LONG_REPO }),
        tinyEntry(RERANK_ID, RERANK_FILE, tinyReranker, ["rerank"], { repo: RERANK_REPO }),
        // A catalog entry that says "rerank" over a GGUF without a ranking head.
        tinyEntry(HEADLESS_RERANK_ID, LONG_FILE, tinyLong, ["rerank"], { repo: LONG_REPO }),
      ],
    });
    await world.hf.addRepo(LONG_REPO, { files: { [LONG_FILE]: tinyLong } });
    await world.hf.addRepo(RERANK_REPO, { files: { [RERANK_FILE]: tinyReranker } });
    node = await startTestNode({ ...world.env, LLMLB_KEEP_ALIVE: "2s", LLMLB_PARALLELISM: "2" });
    for (const id of [TINY_CHAT_ID, LONG_ID]) await resolveModel(node, id);
  }, 60_000);
  afterAll(async () => {
    await node?.stop();
    await world?.close();
  });

  it("serves a prompt over 8,192 tokens on a model configured for 16,384 and refuses a too-long one with both counts", async () => {
    const words = (n: number) => Array.from({ length: n }, (_, i) => ["the", "and", "water", "people"][i % 4]).join(" ");
    const long = await post("/v1/completions", { model: LONG_ID, prompt: words(9_000), max_tokens: 2, temperature: 0, keep_alive: -1 });
    expect(long.status, JSON.stringify(long.json)).toBe(200);
    expect((long.json.usage as { prompt_tokens: number }).prompt_tokens).toBeGreaterThan(8_192);

    // One token per word plus BOS: one token more than fits, so the exact count is given.
    const tooLong = await post("/v1/completions", { model: LONG_ID, prompt: words(16_383), max_tokens: 2 });
    expect(tooLong.status).toBe(400);
    expect((tooLong.json.error as { message: string }).message).toMatch(/^prompt: the prompt has 16384 tokens and at most 16383 fit/);
    const farTooLong = await post("/v1/completions", { model: LONG_ID, prompt: words(40_000), max_tokens: 2 });
    expect(farTooLong.status).toBe(400);
    expect((farTooLong.json.error as { message: string }).message).toMatch(/^prompt: the prompt has more than 16384 tokens and at most 16383 fit/);

    const info = await fetch(`${node.httpUrl}/v1/models/${LONG_ID}`).then((r) => r.json() as Promise<{ context_length: number }>);
    expect(info.context_length).toBe(16_384);
    expect((await loaded()).find((m) => m.id === LONG_ID)?.context_length).toBe(16_384);
    expect((await post(`/v0/models/${LONG_ID}/unload`, {})).json).toEqual({ model_id: LONG_ID, unloaded: true });
  }, 60_000);

  it("reuses the cached prefix on turn 2, reports it, and answers exactly as a cold run", async () => {
    const turn1 = [
      { role: "system", content: "You answer in a few words." },
      { role: "user", content: "hello world, what is the capital of France?" },
    ];
    const first = await chat(turn1, { keep_alive: "-1" });
    expect(first.status).toBe(200);
    const turn2 = [...turn1, { role: "assistant", content: first.json.choices[0]!.message.content }, { role: "user", content: "and the capital of the world?" }];
    const warm = await chat(turn2, { keep_alive: "-1" });
    expect(warm.status).toBe(200);
    expect(warm.json.usage.prompt_tokens_details.cached_tokens).toBeGreaterThanOrEqual(first.json.usage.prompt_tokens);

    expect((await post(`/v0/models/${TINY_CHAT_ID}/unload`, {})).json).toMatchObject({ unloaded: true });
    const cold = await chat(turn2, { keep_alive: "-1" });
    expect(cold.json.usage.prompt_tokens_details.cached_tokens).toBe(0);
    expect(cold.json.usage.prompt_tokens).toBe(warm.json.usage.prompt_tokens);
    expect(warm.json.choices[0]!.message.content).toBe(cold.json.choices[0]!.message.content);
    expect(warm.json.choices[0]!.message.content.length).toBeGreaterThan(0);
  }, 60_000);

  it("lists a loaded model with its context, slots and expiry; unload empties the list", async () => {
    const res = await post(`/v0/models/${TINY_CHAT_ID}/load`, { keep_alive: "10m" });
    expect(res.status).toBe(200);
    // The load's own answer says when the model expires, as the list does.
    const answered = res.json as unknown as LoadedModelJson;
    expect(Date.parse(answered.expires_at!) - Date.now()).toBeGreaterThan(9 * 60_000);
    const model = (await loaded()).find((m) => m.id === TINY_CHAT_ID)!;
    expect(model).toMatchObject({ context_length: 1024, parallel_slots: 2, active_requests: 0, queued_requests: 0 });
    expect(model.memory_bytes).toBeGreaterThan(0);
    const expiresIn = Date.parse(model.expires_at!) - Date.now();
    expect(expiresIn).toBeGreaterThan(9 * 60_000);
    expect((await post(`/v0/models/${TINY_CHAT_ID}/unload`, {})).json).toEqual({ model_id: TINY_CHAT_ID, unloaded: true });
    expect(await isLoaded(TINY_CHAT_ID)).toBe(false);
    expect((await post(`/v0/models/${TINY_CHAT_ID}/unload`, {})).json).toEqual({ model_id: TINY_CHAT_ID, unloaded: false });
  }, 30_000);

  it("a request refused for an unknown adapter leaves a pinned model's keep-alive as it was", async () => {
    expect((await post(`/v0/models/${TINY_CHAT_ID}/load`, { keep_alive: -1 })).status).toBe(200);
    expect((await loaded()).find((m) => m.id === TINY_CHAT_ID)?.expires_at).toBeNull();
    const refused = await post("/v1/chat/completions", { model: TINY_CHAT_ID, messages: [{ role: "user", content: "hi" }], max_tokens: 2, adapters: ["no-such-adapter"] });
    expect(refused.status).toBe(404);
    expect((await post(`/v0/models/${TINY_CHAT_ID}/load`, { adapters: ["no-such-adapter"] })).status).toBe(404);
    expect((await loaded()).find((m) => m.id === TINY_CHAT_ID)?.expires_at).toBeNull();
    await post(`/v0/models/${TINY_CHAT_ID}/unload`, {});
  }, 30_000);

  it("loading an embedding model prepares its embedding context, not a generation context", async () => {
    await resolveModel(node, TINY_EMBED_ID);
    expect((await post(`/v0/models/${TINY_EMBED_ID}/load`, { keep_alive: "1m" })).status).toBe(200);
    const atLoad = (await loaded()).find((m) => m.id === TINY_EMBED_ID)!;
    expect(atLoad.adapter_sets).toEqual([]);
    const embedded = await post("/v1/embeddings", { model: TINY_EMBED_ID, input: "hello" });
    expect(embedded.status).toBe(200);
    // Nothing more to create: the load made the context the request used.
    expect((await loaded()).find((m) => m.id === TINY_EMBED_ID)!.memory_bytes).toBe(atLoad.memory_bytes);
    expect((await post(`/v0/models/${TINY_EMBED_ID}/unload`, {})).json).toMatchObject({ unloaded: true });
  }, 30_000);

  it("takes keep_alive on /v1/embeddings too: -1 keeps an embedding model pinned, and a bad value is a 400 naming it", async () => {
    await resolveModel(node, TINY_EMBED_ID);
    expect((await post("/v1/embeddings", { model: TINY_EMBED_ID, input: "hello", keep_alive: -1 })).status).toBe(200);
    expect((await loaded()).find((m) => m.id === TINY_EMBED_ID)?.expires_at).toBeNull();
    expect((await post("/v1/embeddings", { model: TINY_EMBED_ID, input: "hello", keep_alive: "2m" })).status).toBe(200);
    const expiresIn = Date.parse((await loaded()).find((m) => m.id === TINY_EMBED_ID)!.expires_at!) - Date.now();
    expect(expiresIn).toBeGreaterThan(60_000);
    expect(expiresIn).toBeLessThanOrEqual(120_000);
    const bad = await post("/v1/embeddings", { model: TINY_EMBED_ID, input: "hello", keep_alive: "5 parsecs" });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ error: { param: "keep_alive" } });
    expect((await post(`/v0/models/${TINY_EMBED_ID}/unload`, {})).json).toMatchObject({ unloaded: true });
  }, 30_000);

  it("generates the n choices of a request at once, in the model's parallel slots", async () => {
    const res = await fetch(`${node.httpUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      // EOS banned: each choice runs until its context is full.
      body: JSON.stringify({ model: TINY_CHAT_ID, messages: [{ role: "user", content: "hello" }], n: 2, stream: true, temperature: 0, logit_bias: { "4": -100 } }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    try {
      text = decoder.decode((await reader.read()).value, { stream: true });
      // Before, the second choice waited in the queue until the first had finished.
      expect((await loaded()).find((m) => m.id === TINY_CHAT_ID)).toMatchObject({ active_requests: 2 });
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += decoder.decode(chunk.value, { stream: true });
    } finally {
      await reader.cancel().catch(() => undefined);
    }
    const finishes = text
      .split("\n\n")
      .filter((event) => event.startsWith("data: {"))
      .flatMap((event) => (JSON.parse(event.slice(6)) as { choices: Array<{ index: number; finish_reason: string | null }> }).choices)
      .filter((choice) => choice.finish_reason !== null);
    expect(finishes.map((c) => c.index).sort()).toEqual([0, 1]);
    expect(finishes.every((c) => c.finish_reason === "length")).toBe(true);
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
  }, 60_000);

  it("keep_alive 0 (and a negative zero, \"-0\") unloads the model right after the answer", async () => {
    for (const keepAlive of [0, "-0"]) {
      const answer = await chat([{ role: "user", content: "hello" }], { keep_alive: keepAlive });
      expect(answer.status).toBe(200);
      expect(await eventually(async () => !(await isLoaded(TINY_CHAT_ID)), 5_000), `keep_alive ${JSON.stringify(keepAlive)}`).toBe(true);
    }
  }, 30_000);

  /** Unloads the chat model, then records its loaded and unloaded events; `unloaded()` waits for its next unload. */
  const watchLoads = async () => {
    await post(`/v0/models/${TINY_CHAT_ID}/unload`, {});
    const seen: string[] = [];
    const off = node.runtime.events.on((event) => {
      if (event.modelId === TINY_CHAT_ID && (event.type === "loaded" || event.type === "unloaded")) seen.push(event.type);
    });
    const unloaded = async () => {
      expect(await eventually(async () => !(await isLoaded(TINY_CHAT_ID)), 5_000)).toBe(true);
      // The runner's "unloaded" event crosses its channel apart from the list answer above: wait for it.
      await eventually(async () => seen.includes("unloaded"), 5_000);
    };
    return { seen, off, unloaded };
  };

  it("keep_alive 0 with n choices loads the model once and unloads it after the last choice", async () => {
    const { seen, off, unloaded } = await watchLoads();
    try {
      const answer = await chat([{ role: "user", content: "hello" }], { keep_alive: 0, n: 3 });
      expect(answer.status).toBe(200);
      expect(answer.json.choices).toHaveLength(3);
      await unloaded();
      // Before, every choice unloaded the model and the next loaded it again.
      expect(seen).toEqual(["loaded", "unloaded"]);
    } finally {
      off();
    }
  }, 30_000);

  it("keep_alive 0 on a completion of more prompts than run at once loads the model once, not once per wave", async () => {
    const { seen, off, unloaded } = await watchLoads();
    try {
      const prompts = Array.from({ length: 9 }, (_, i) => `prompt ${i}`);
      for (const stream of [false, true]) {
        seen.length = 0;
        const res = await fetch(`${node.httpUrl}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: TINY_CHAT_ID, prompt: prompts, max_tokens: 3, temperature: 0, keep_alive: 0, stream }),
        });
        expect(res.status).toBe(200);
        const body = await res.text();
        if (stream) expect(body.trimEnd().endsWith("data: [DONE]")).toBe(true);
        else expect((JSON.parse(body) as { choices: unknown[] }).choices).toHaveLength(9);
        await unloaded();
        // Before, the model unloaded after each wave of 4 prompts and loaded again for the next.
        expect(seen, stream ? "streamed" : "whole").toEqual(["loaded", "unloaded"]);
      }
    } finally {
      off();
    }
  }, 60_000);

  it("unloads an idle model when the node's 2 s default keep-alive runs out", async () => {
    const answer = await chat([{ role: "user", content: "hello" }]);
    expect(answer.status).toBe(200);
    const model = (await loaded()).find((m) => m.id === TINY_CHAT_ID);
    expect(model?.expires_at).not.toBeNull();
    expect(await eventually(async () => !(await isLoaded(TINY_CHAT_ID)), 8_000)).toBe(true);
  }, 30_000);

  it("keeps a model loaded for a keep_alive longer than any timer can wait, instead of unloading it at once", async () => {
    for (const keepAlive of [1e12, "900h"]) {
      const answer = await chat([{ role: "user", content: "hello" }], { keep_alive: keepAlive });
      expect(answer.status).toBe(200);
      await new Promise((r) => setTimeout(r, 300));
      expect((await loaded()).find((m) => m.id === TINY_CHAT_ID), String(keepAlive)).toMatchObject({ expires_at: null });
    }
    expect((await post(`/v0/models/${TINY_CHAT_ID}/unload`, {})).json).toEqual({ model_id: TINY_CHAT_ID, unloaded: true });
  }, 30_000);

  it("refuses a bad keep_alive with 400 naming the field", async () => {
    const res = await chat([{ role: "user", content: "hello" }], { keep_alive: "soon" });
    expect(res.status).toBe(400);
    expect((res.json.error as { message: string }).message).toContain("keep_alive");
  });

  it("round-trips text through /tokenize and /detokenize; refuses unknown token ids", async () => {
    const text = "hello world, the café 日本";
    const tokens = await post("/tokenize", { model: TINY_CHAT_ID, content: text });
    expect(tokens.status).toBe(200);
    const ids = tokens.json.tokens as number[];
    expect(ids.length).toBeGreaterThan(3);
    const withBos = await post("/tokenize", { model: TINY_CHAT_ID, content: text, add_special: true });
    const prompt = withBos.json.tokens as number[];
    expect(prompt[0]).toBe(1);
    expect(prompt).toHaveLength(ids.length + 1);
    const back = await post("/detokenize", { model: TINY_CHAT_ID, tokens: ids });
    expect(back.json).toEqual({ content: text });
    const backWithBos = await post("/detokenize", { model: TINY_CHAT_ID, tokens: prompt.slice(1) });
    expect((backWithBos.json.content as string).trim()).toBe(text);
    // Strict fields, as on every other route: a field the node does not implement is named, not dropped.
    for (const [path, body] of [["/tokenize", { model: TINY_CHAT_ID, content: text, with_pieces: true }], ["/detokenize", { model: TINY_CHAT_ID, tokens: ids, with_pieces: true }], ["/v1/rerank", { model: TINY_CHAT_ID, query: "q", documents: ["d"], with_pieces: true }]] as const) {
      const refused = await post(path, body);
      expect(refused.status, path).toBe(400);
      expect(refused.json.error, path).toMatchObject({ code: "unsupported_field", param: "with_pieces" });
    }
    const bad = await post("/detokenize", { model: TINY_CHAT_ID, tokens: [5, 999_999] });
    expect(bad.status).toBe(400);
    expect((bad.json.error as { message: string }).message).toContain("tokens[1]");
  }, 30_000);

  it("ranks documents with a GGUF reranker on /v1/rerank, /rerank and gRPC alike: best first, top_n, scores in (0, 1)", async () => {
    const documents = ["an apple is red", "the sky is blue", "bananas are yellow", "strawberries are red too"];
    const all = await post("/v1/rerank", { model: RERANK_ID, query: "which fruit is red", documents, return_documents: true });
    expect(all.status, JSON.stringify(all.json)).toBe(200);
    const results = all.json.results as Array<{ index: number; relevance_score: number; document: { text: string } }>;
    expect(results.map((r) => r.index).sort()).toEqual([0, 1, 2, 3]);
    for (const r of results) {
      expect(r.relevance_score).toBeGreaterThan(0);
      expect(r.relevance_score).toBeLessThan(1);
      expect(r.document.text).toBe(documents[r.index]);
    }
    const scores = results.map((r) => r.relevance_score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    // A document's score depends on the query and that document only, not on its neighbours or the route.
    expect(new Set(scores).size).toBeGreaterThan(1);
    const top = await post("/rerank", { model: RERANK_ID, query: "which fruit is red", documents: [documents[3], documents[1]], top_n: 1 });
    const best = results.find((r) => r.index === 3)!.relevance_score > results.find((r) => r.index === 1)!.relevance_score ? 0 : 1;
    expect(top.json.results).toEqual([{ index: best, relevance_score: results.find((r) => r.index === [3, 1][best])!.relevance_score }]);
    const grpc = await node.clients.inference.rerank({ modelId: RERANK_ID, query: "which fruit is red", documents });
    expect(grpc.results.map((r) => [r.index, r.relevanceScore])).toEqual(results.map((r) => [r.index, r.relevance_score]));
    expect(grpc.usage?.promptTokens).toBeGreaterThan(0);
    // A reranker is not a chat model.
    const chatted = await post("/v1/chat/completions", { model: RERANK_ID, messages: [{ role: "user", content: "hi" }] });
    expect(chatted.status).toBe(400);
  }, 30_000);

  it("refuses a rerank entry whose GGUF has no ranking head, saying so", async () => {
    const res = await post("/v1/rerank", { model: HEADLESS_RERANK_ID, query: "which", documents: ["a", "b"] });
    expect(res.status, JSON.stringify(res.json)).toBe(422);
    expect(res.json.error).toMatchObject({ code: "invalid_model_file" });
    expect((res.json.error as { message: string }).message).toMatch(/ranking head|cls\.output\.weight/);
  }, 30_000);

  it("refuses /v1/rerank and /rerank for a model without the rerank capability", async () => {
    for (const path of ["/v1/rerank", "/rerank"]) {
      const res = await post(path, { model: TINY_CHAT_ID, query: "capital of France", documents: ["Paris", "water"] });
      expect(res.status).toBe(400);
      expect((res.json.error as { message: string; code: string }).message).toContain("does not support rerank");
      expect((res.json.error as { code: string }).code).toBe("capability_missing");
    }
  });
});
