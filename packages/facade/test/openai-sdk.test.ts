import OpenAI from "openai";
import { sizedModelBytes } from "../../../testkit/gguf/sized-gguf.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { logSink, startTestNode, type TestNode } from "../../../testkit/node/index.js";
import { ModelState } from "@llmlb/runtime/gen/llmlb/node/v1/model_pb";
import { startTinyWorld, tinyEntry, TINY_CHAT_ID, TINY_EMBED_FILE, TINY_EMBED_ID, type TinyWorld } from "../../../testkit/world/tiny-world.js";

/** 4 MiB of bytes (only downloaded, never loaded): big enough for several progress events. */
const BIG = sizedModelBytes(4 * 1024 * 1024, 31);
const BIG_ID = "tiny-big";
const BIG_REPO = "llmlb-test/big-GGUF";
const BIG_FILE = "big-F32.gguf";

/** Reads an SSE response into its events. */
async function readSse(res: Response): Promise<Array<{ event: string; data: string }>> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((block) => block.includes("data:"))
    .map((block) => ({
      event: /^event: (.*)$/m.exec(block)?.[1] ?? "message",
      data: block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n"),
    }));
}

describe("/v1 with the official openai SDK, /v0 pull and events", () => {
  let world: TinyWorld;
  let node: TestNode;
  let openai: OpenAI;
  const activeRequests = async () => {
    const { models } = await node.clients.inference.listLoadedModels({});
    return models.find((m) => m.modelId === TINY_CHAT_ID)?.activeRequests ?? 0;
  };

  beforeAll(async () => {
    world = await startTinyWorld({ extraModels: [{ ...tinyEntry(BIG_ID, BIG_FILE, BIG, ["text-generation"]), repo: BIG_REPO }] });
    await world.hf.addRepo(BIG_REPO, { files: { [BIG_FILE]: BIG } });
    // Paced per response: the node fetches a 4 MiB file over 4 ranged connections, so 512 KiB/s each
    // keeps the transfer ~2 s long, several 250 ms progress intervals even on a loaded machine.
    world.hf.throttle(512 * 1024, { path: BIG_FILE });
    node = await startTestNode({ ...world.env, LLMLB_PARALLELISM: "1", LLMLB_QUEUE_SIZE: "0" });
    openai = new OpenAI({ apiKey: "unused", baseURL: `${node.httpUrl}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await node?.stop();
    await world?.close();
  });

  it("lists only models that can answer now", async () => {
    const list = await openai.models.list();
    expect(list.data.map((m) => m.id)).not.toContain(TINY_CHAT_ID);
    await expect(openai.models.retrieve(TINY_CHAT_ID)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("answers 503 with Retry-After for a model not on disk when the client asks not to wait", async () => {
    const res = await fetch(`${node.httpUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: TINY_CHAT_ID, messages: [{ role: "user", content: "hi" }], wait_for_model: false }),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
    const body = (await res.json()) as { error: { code: string; type: string; message: string } };
    expect(body.error).toMatchObject({ code: "model_not_ready", type: "server_error" });
    expect(body.error.message).toContain("wait_for_model: false");
    expect((await node.clients.catalog.getModel({ modelId: TINY_CHAT_ID })).model?.local).toBeUndefined();
  });

  it("POST /pull twice downloads once, and SSE shows progress until ready", async () => {
    const events = fetch(`${node.httpUrl}/v0/models/${BIG_ID}/events`).then(readSse);
    const first = await fetch(`${node.httpUrl}/v0/models/${BIG_ID}/pull`, { method: "POST" });
    const second = await fetch(`${node.httpUrl}/v0/models/${BIG_ID}/pull`, { method: "POST" });
    expect(first.status).toBe(202);
    expect(await first.json()).toMatchObject({ model_id: BIG_ID, status: "started" });
    expect([200, 202]).toContain(second.status);
    const seen = await events;
    expect(seen.filter((e) => e.event === "progress").length).toBeGreaterThan(0);
    const progress = seen.filter((e) => e.event === "progress").map((e) => JSON.parse(e.data) as { progress: { fraction: number } });
    expect(progress.at(-1)!.progress.fraction).toBeGreaterThan(0);
    expect(seen.at(-1)!.event).toBe("ready");
    expect(JSON.parse(seen.at(-1)!.data)).toMatchObject({ id: BIG_ID, state: "ready" });
    // The stream ends here: its last word carries the copy as GET shows it (when and from which commit).
    const { local } = (await (await fetch(`${node.httpUrl}/v0/models/${BIG_ID}`)).json()) as { local: { downloaded_at: string; revision: string } };
    expect(local.revision).toMatch(/^[0-9a-f]{40}$/);
    expect(JSON.parse(seen.at(-1)!.data).local).toMatchObject({ downloaded_at: local.downloaded_at, revision: local.revision });
    expect(world.hf.bytesServed(BIG_REPO, BIG_FILE)).toBe(BIG.length);
    world.hf.throttle(null);
  });

  it("DELETE /v0/models/{id}/pull cancels a pull started over HTTP: the model is available again, its partial kept", async () => {
    // The previous test's second POST /pull may still be checking the copy it found (409 meanwhile).
    await expect.poll(async () => (await fetch(`${node.httpUrl}/v0/models/${BIG_ID}`, { method: "DELETE" })).status).toBe(200);
    world.hf.throttle(128 * 1024, { path: BIG_FILE });
    const state = async () => ((await (await fetch(`${node.httpUrl}/v0/models/${BIG_ID}`)).json()) as { state: string }).state;
    expect((await fetch(`${node.httpUrl}/v0/models/${BIG_ID}/pull`, { method: "POST" })).status).toBe(202);
    await expect.poll(state).toBe("downloading");
    const refused = await fetch(`${node.httpUrl}/v0/models/${BIG_ID}`, { method: "DELETE" });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain(`DELETE /v0/models/${BIG_ID}/pull`);
    const cancel = await fetch(`${node.httpUrl}/v0/models/${BIG_ID}/pull`, { method: "DELETE" });
    expect(await cancel.json()).toEqual({ model_id: BIG_ID, cancelled: true });
    await expect.poll(state).toBe("available");
    expect(await (await fetch(`${node.httpUrl}/v0/models/${BIG_ID}/pull`, { method: "DELETE" })).json()).toEqual({ model_id: BIG_ID, cancelled: false });
    expect((await fetch(`${node.httpUrl}/v0/models/nope/pull`, { method: "DELETE" })).status).toBe(404);
    world.hf.throttle(null);
  });

  it("lists and retrieves a model once it is on disk", async () => {
    await fetch(`${node.httpUrl}/v0/models/${TINY_CHAT_ID}/pull`, { method: "POST" });
    await expect.poll(async () => (await (await fetch(`${node.httpUrl}/v0/models/${TINY_CHAT_ID}`)).json() as { state: string }).state, { timeout: 10_000 }).toBe("ready");
    const list = await openai.models.list();
    expect(list.object).toBe("list");
    expect(list.data.find((m) => m.id === TINY_CHAT_ID)).toMatchObject({ object: "model", owned_by: "llmlb-test" });
    expect((await openai.models.retrieve(TINY_CHAT_ID)).id).toBe(TINY_CHAT_ID);
  });

  it("answers a chat completion", async () => {
    const res = await openai.chat.completions.create({ model: TINY_CHAT_ID, messages: [{ role: "user", content: "Hello" }], max_tokens: 8, temperature: 0 });
    expect(res.object).toBe("chat.completion");
    expect(res.choices[0]!.message.role).toBe("assistant");
    expect(res.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(res.choices[0]!.finish_reason).toBe("length");
    expect(res.usage).toMatchObject({ completion_tokens: 8 });
    expect(res.usage!.prompt_tokens).toBeGreaterThan(0);
    expect(res.usage!.total_tokens).toBe(res.usage!.prompt_tokens + 8);
  });

  it("streams a chat completion with the same text, stable ids and usage last", async () => {
    const full = await openai.chat.completions.create({ model: TINY_CHAT_ID, messages: [{ role: "user", content: "Stream" }], max_tokens: 12, temperature: 0 });
    const stream = await openai.chat.completions.create({
      model: TINY_CHAT_ID, messages: [{ role: "user", content: "Stream" }], max_tokens: 12, temperature: 0,
      stream: true, stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(new Set(chunks.map((c) => c.created)).size).toBe(1);
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    const text = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? "")).join("");
    expect(text).toBe(full.choices[0]!.message.content);
    const finish = chunks.flatMap((c) => c.choices).find((ch) => ch.finish_reason);
    expect(finish?.finish_reason).toBe("length");
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ completion_tokens: 12 });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });

  it("answers completions, streamed and not", async () => {
    const res = await openai.completions.create({ model: TINY_CHAT_ID, prompt: "Once upon", max_tokens: 6, temperature: 0 });
    expect(res.object).toBe("text_completion");
    expect(res.choices[0]!.finish_reason).toBe("length");
    const stream = await openai.completions.create({ model: TINY_CHAT_ID, prompt: "Once upon", max_tokens: 6, temperature: 0, stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    expect(text).toBe(res.choices[0]!.text);
  });

  it("stops a download an embeddings client started when it leaves; the model is left available, not failed", async () => {
    const slow = world.hf.throttle(16 * 1024, { path: TINY_EMBED_FILE });
    const left = await fetch(`${node.httpUrl}/v1/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: TINY_EMBED_ID, input: "hello" }),
      signal: AbortSignal.timeout(800),
    }).catch((err: Error) => err.name);
    expect(left).toBe("TimeoutError");
    const state = async () => (await node.clients.catalog.getModel({ modelId: TINY_EMBED_ID })).model?.state;
    await expect.poll(state, { timeout: 10_000, interval: 100 }).toBe(ModelState.AVAILABLE);
    const served = world.hf.bytesServed("llmlb-test/tiny-GGUF", TINY_EMBED_FILE);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(world.hf.bytesServed("llmlb-test/tiny-GGUF", TINY_EMBED_FILE)).toBe(served);
    const metrics = await (await fetch(`${node.httpUrl}/metrics`)).text();
    expect(metrics).not.toMatch(/^llmlb_download_failures_total\{reason="CANCELLED"\}/m);
    slow?.remove();
  });

  it("returns embeddings as floats and as base64 (the SDK's default), auto-downloading the model", async () => {
    const floats = await openai.embeddings.create({ model: TINY_EMBED_ID, input: ["hello", "world"], encoding_format: "float" });
    expect(floats.data).toHaveLength(2);
    expect(floats.data[0]!.embedding).toHaveLength(64);
    const viaBase64 = await openai.embeddings.create({ model: TINY_EMBED_ID, input: "hello" });
    expect(viaBase64.data[0]!.embedding).toHaveLength(64);
    viaBase64.data[0]!.embedding.forEach((v, i) => expect(v).toBeCloseTo(floats.data[0]!.embedding[i]!, 5));
  });

  it("DELETE of a supported model with remove_registration says in llmlb-notice that it stays in the catalog", async () => {
    await fetch(`${node.httpUrl}/v0/models/${TINY_EMBED_ID}/unload`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    const res = await fetch(`${node.httpUrl}/v0/models/${TINY_EMBED_ID}?remove_registration=true`, { method: "DELETE" });
    expect(res.status).toBe(200);
    expect(res.headers.get("llmlb-notice")).toMatch(new RegExp(`^${TINY_EMBED_ID} is a supported model .*cannot be unregistered`));
    await fetch(`${node.httpUrl}/v0/models/${TINY_EMBED_ID}/pull`, { method: "POST" });
    await expect.poll(async () => ((await (await fetch(`${node.httpUrl}/v0/models/${TINY_EMBED_ID}`)).json()) as { state: string }).state, { timeout: 15_000 }).toBe("ready");
  });

  it("raises NotFoundError with code model_not_found for an unknown model", async () => {
    const err = await openai.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe("model_not_found");
  });

  it("raises RateLimitError with Retry-After when the model's queue is full", async () => {
    const busy = await openai.chat.completions.create({ model: TINY_CHAT_ID, messages: [{ role: "user", content: "long" }], max_tokens: 900, temperature: 0, stream: true });
    const iterator = busy[Symbol.asyncIterator]();
    await iterator.next();
    const err = await openai.chat.completions.create({ model: TINY_CHAT_ID, messages: [{ role: "user", content: "x" }], max_tokens: 2 }).catch((e: unknown) => e);
    busy.controller.abort();
    // Leave the model idle for the next test: the aborted stream must give its slot back.
    await expect.poll(activeRequests, { timeout: 5_000, interval: 50 }).toBe(0);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).headers?.get("retry-after")).toMatch(/^\d+$/);
  });

  it("stops generating when the HTTP client disconnects", async () => {
    const controller = new AbortController();
    const res = await fetch(`${node.httpUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: TINY_CHAT_ID, messages: [{ role: "user", content: "go on" }], max_tokens: 900, stream: true }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await expect.poll(activeRequests, { timeout: 5_000, interval: 50 }).toBe(0);
    // The slot is free again: the next request is admitted instead of QUEUE_FULL.
    const next = await openai.chat.completions.create({ model: TINY_CHAT_ID, messages: [{ role: "user", content: "x" }], max_tokens: 2, temperature: 0 });
    expect(next.choices[0]!.finish_reason).toBe("length");
  });
});

describe("/v1 with an API key", () => {
  let world: TinyWorld;
  let node: TestNode;
  beforeAll(async () => {
    world = await startTinyWorld();
    node = await startTestNode({ ...world.env, LLMLB_API_KEY: "sk-node-key" });
  });
  afterAll(async () => {
    await node?.stop();
    await world?.close();
  });

  it("raises AuthenticationError without the key and works with it", async () => {
    const anonymous = new OpenAI({ apiKey: "wrong", baseURL: `${node.httpUrl}/v1`, maxRetries: 0 });
    await expect(anonymous.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const keyed = new OpenAI({ apiKey: "sk-node-key", baseURL: `${node.httpUrl}/v1`, maxRetries: 0 });
    const res = await keyed.chat.completions.create({ model: TINY_CHAT_ID, messages: [{ role: "user", content: "hi" }], max_tokens: 3, temperature: 0 });
    expect(res.usage?.completion_tokens).toBe(3);
  });
});

describe("/v1 log lines", () => {
  let world: TinyWorld;
  let node: TestNode;
  const logs = logSink();
  beforeAll(async () => {
    world = await startTinyWorld();
    node = await startTestNode({ ...world.env, LLMLB_LOG_LEVEL: "info" }, {}, { logTo: logs.stream });
  });
  afterAll(async () => {
    await node?.stop();
    await world?.close();
  });

  it("a 5xx answered on purpose (model not on disk, wait_for_model false) is a warning without a stack, not an error", async () => {
    const res = await fetch(`${node.httpUrl}/v1/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: TINY_EMBED_ID, input: "hi", wait_for_model: false }),
    });
    expect(res.status).toBe(503);
    const refused = logs.lines.filter((l) => l.msg === "request refused");
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ level: "warn", reason: "MODEL_NOT_READY" });
    expect(JSON.stringify(refused[0])).not.toContain("stack");
    expect(logs.lines.filter((l) => l.level === "error" || l.level === "fatal")).toEqual([]);
  });
});

describe("/v1 streamed requests whose client leaves before the answer starts", () => {
  let world: TinyWorld;
  let node: TestNode;
  /** Bans the tiny model's special tokens: with this seed, a generation then runs to max_tokens. */
  const NO_END = { "0": -100, "1": -100, "2": -100, "3": -100, "4": -100 };
  const post = (path: string, body: unknown, signal?: AbortSignal) =>
    fetch(`${node.httpUrl}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal });
  const loaded = async () => (await node.runtime.engine.list()).find((m) => m.modelId === TINY_CHAT_ID);

  beforeAll(async () => {
    world = await startTinyWorld();
    node = await startTestNode({ ...world.env, LLMLB_PARALLELISM: "1", LLMLB_QUEUE_SIZE: "4" });
    await (await post("/v1/completions", { model: TINY_CHAT_ID, prompt: "warm", max_tokens: 1 })).json();
  });
  afterAll(async () => {
    await node?.stop();
    await world?.close();
  });

  it.each([
    ["/v1/chat/completions", { messages: [{ role: "user", content: "x" }], max_tokens: 400, logit_bias: NO_END, stream: true }],
    ["/v1/completions", { prompt: "x", max_tokens: 400, logit_bias: NO_END, stream: true }],
    ["/v1/responses", { input: "x", max_output_tokens: 400, stream: true }],
  ])("%s: a client that leaves while queued is never served (nothing generated for it)", async (path, body) => {
    const before = (await loaded())!.generatedTokens;
    // Three long answers hold the only slot, one after the other, while the request queues behind them and its client leaves.
    // (Greedy, the tiny model's answer to this prompt ends within a few tokens even with its special tokens banned; sampled with this seed, it runs to max_tokens.)
    const fillers = Array.from({ length: 3 }, () =>
      post("/v1/completions", { model: TINY_CHAT_ID, prompt: "write a long story", max_tokens: 900, logit_bias: NO_END, temperature: 1, seed: 10 }).then((r) => r.json() as Promise<{ usage: { completion_tokens: number } }>),
    );
    await expect.poll(async () => (await loaded())?.queuedRequests, { timeout: 5_000, interval: 10 }).toBe(2);
    const leaving = new AbortController();
    const gone = post(path, { model: TINY_CHAT_ID, ...body }, leaving.signal).catch((err: unknown) => err);
    await expect.poll(async () => (await loaded())?.queuedRequests, { timeout: 5_000, interval: 10 }).toBe(3);
    leaving.abort();
    expect(await gone).toMatchObject({ name: "AbortError" });
    const fillerTokens = (await Promise.all(fillers)).reduce((sum, answer) => sum + answer.usage.completion_tokens, 0);
    expect(fillerTokens).toBe(2700);
    // Once the fillers are done, the slot stays free: the request of the client that left does not run.
    await new Promise((r) => setTimeout(r, 500));
    expect(await loaded()).toMatchObject({ activeRequests: 0, queuedRequests: 0 });
    expect((await loaded())!.generatedTokens - before).toBe(fillerTokens);
  });
});
