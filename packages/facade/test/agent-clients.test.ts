import { execFile, execFileSync } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateObject, generateText, jsonSchema, streamText, tool, type JSONSchema7 } from "ai";
import { Ajv } from "ajv";
import * as grpc from "@grpc/grpc-js";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InferenceService } from "@llmlb/runtime/gen/llmlb/node/v1/inference_pb";
import { errorInfoOf, grpcJsClient, tempDir, type TestNode } from "../../../testkit/node/index.js";
import { TINY_CHAT_ID, TINY_EMBED_ID } from "../../../testkit/world/tiny-world.js";
import { startAgentWorld, THINK_ID } from "./helpers/agent-world.js";

const root = path.resolve(import.meta.dirname, "../../..");
const PYTHON = "/usr/bin/python3";

const WEATHER: JSONSchema7 = {
  type: "object",
  properties: {
    city: { type: "string", maxLength: 20 },
    unit: { enum: ["celsius", "fahrenheit"] },
    days: { type: "integer" },
  },
  required: ["city", "unit", "days"],
  additionalProperties: false,
};
const WEATHER_TOOL = { type: "function" as const, function: { name: "get_weather", description: "Weather forecast for a city", parameters: WEATHER as Record<string, unknown> } };
const TIME_TOOL = { type: "function" as const, function: { name: "get_time", description: "Time in a zone", parameters: { type: "object", properties: { zone: { type: "string", maxLength: 10 } }, required: ["zone"] } } };
const PERSON: JSONSchema7 = {
  type: "object",
  properties: { name: { type: "string", maxLength: 16 }, age: { type: "integer" }, pets: { type: "array", items: { enum: ["cat", "dog"] }, maxItems: 2 } },
  required: ["name", "age", "pets"],
  additionalProperties: false,
};

const ajv = new Ajv({ strict: false });
const validWeather = ajv.compile(WEATHER);
const validPerson = ajv.compile(PERSON);

interface ChatBody {
  choices: Array<{
    index: number;
    message: { role: string; content: string | null; reasoning_content?: string; tool_calls?: Array<{ id: string; type: string; function: { name: string; arguments: string } }> };
    finish_reason: string;
    logprobs: { content: Array<{ token: string; logprob: number; bytes: number[]; top_logprobs: Array<{ token: string; logprob: number }> }> } | null;
  }>;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

let agents: Awaited<ReturnType<typeof startAgentWorld>>;
let node: TestNode;
let openai: OpenAI;

async function post(route: string, body: Record<string, unknown>): Promise<{ status: number; json: unknown; text: string }> {
  const res = await fetch(`${node.httpUrl}${route}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, text, json: res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : undefined };
}

/** The `data:` payloads of an SSE body, without the final [DONE]. */
function sseChunks(text: string): Array<Record<string, unknown>> {
  const data = text.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6));
  expect(data.at(-1)).toBe("[DONE]");
  return data.slice(0, -1).map((d) => JSON.parse(d) as Record<string, unknown>);
}

const ask = { model: TINY_CHAT_ID, messages: [{ role: "user" as const, content: "What is the weather in Paris?" }], max_tokens: 120, temperature: 0 };

beforeAll(async () => {
  agents = await startAgentWorld();
  ({ node, openai } = agents);
});
afterAll(async () => {
  await agents?.close();
});

describe("tool calls over /v1", () => {
  it('tool_choice "required": message.tool_calls with call_ ids and arguments valid against the schema', async () => {
    const { status, json } = await post("/v1/chat/completions", { ...ask, tools: [WEATHER_TOOL, TIME_TOOL], tool_choice: "required" });
    expect(status).toBe(200);
    const choice = (json as ChatBody).choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls!.length).toBeGreaterThanOrEqual(1);
    for (const call of choice.message.tool_calls!) {
      expect(call).toMatchObject({ id: expect.stringMatching(/^call_/), type: "function" });
      const args: unknown = JSON.parse(call.function.arguments);
      if (call.function.name === "get_weather") expect(validWeather(args), call.function.arguments).toBe(true);
      else expect(call.function.name).toBe("get_time");
    }
  });

  it("streams a named call as the reference shows: id, type and name first, then argument pieces", async () => {
    const { status, text } = await post("/v1/chat/completions", { ...ask, tools: [WEATHER_TOOL, TIME_TOOL], tool_choice: { type: "function", function: { name: "get_weather" } }, stream: true });
    expect(status).toBe(200);
    const chunks = sseChunks(text);
    type StreamedCall = { index: number; id?: string; type?: string; function: { name?: string; arguments: string } };
    const pieces = chunks.flatMap((c) => ((c.choices as Array<{ delta: { tool_calls?: StreamedCall[] } }>)[0]?.delta.tool_calls ?? []));
    expect(pieces[0]).toEqual({ index: 0, id: expect.stringMatching(/^call_/), type: "function", function: { name: "get_weather", arguments: "" } });
    expect(pieces.length).toBeGreaterThan(2);
    for (const piece of pieces.slice(1)) expect(Object.keys(piece).sort()).toEqual(["function", "index"]);
    expect(validWeather(JSON.parse(pieces.map((p) => p.function.arguments).join("")))).toBe(true);
    const finishes = chunks.map((c) => (c.choices as Array<{ finish_reason: string | null }>)[0]?.finish_reason);
    expect(finishes.at(-1)).toBe("tool_calls");
    expect(finishes.slice(0, -1).every((f) => f === null)).toBe(true);
  });

  it("the openai SDK reassembles a streamed call, runs the tool and gets an answer to its result", async () => {
    const seen: unknown[] = [];
    const runner = openai.chat.completions.runTools({
      ...ask,
      stream: true,
      tools: [
        {
          type: "function",
          function: {
            name: "get_weather",
            description: "Weather forecast for a city",
            parameters: WEATHER as Record<string, unknown>,
            parse: (text: string) => JSON.parse(text) as unknown,
            function: (args: unknown) => {
              seen.push(args);
              return { forecast: "sunny", temperature: 21 };
            },
          },
        },
      ],
      tool_choice: { type: "function", function: { name: "get_weather" } },
    });
    await runner.done();
    expect(seen).toHaveLength(1);
    expect(validWeather(seen[0])).toBe(true);

    // The conversation as the SDK recorded it (its own assistant and tool messages) goes back as is.
    const messages = runner.messages;
    expect(messages.map((m) => m.role)).toEqual(["user", "assistant", "tool"]);
    const answer = await openai.chat.completions.create({ model: TINY_CHAT_ID, messages, tools: [WEATHER_TOOL], tool_choice: "none", max_tokens: 6, temperature: 0 });
    expect(answer.choices[0]!.finish_reason).toBe("length");
    expect(answer.choices[0]!.message.tool_calls ?? []).toEqual([]);
    expect(answer.usage!.completion_tokens).toBe(6);
  });

  it("tools for a model whose template has no tool syntax: 400 on /v1 and INVALID_ARGUMENT on gRPC, same reason", async () => {
    // tiny-think's GGUF template is rendered as Jinja by node-llama-cpp and never renders tools.
    const refused = await post("/v1/chat/completions", { ...ask, model: THINK_ID, tools: [WEATHER_TOOL], tool_choice: "required" });
    expect(refused.status).toBe(400);
    expect((refused.json as ErrorBody).error).toMatchObject({ type: "invalid_request_error", param: "tools", code: "tools_unsupported" });
    expect((refused.json as ErrorBody).error.message).toMatch(/^model "tiny-think" cannot use tools: .*Send the request without tools/);

    const client = grpcJsClient(InferenceService, node.grpcUrl);
    try {
      const err = await new Promise<grpc.ServiceError>((resolve, reject) => {
        const call = client.stream("chat", { modelId: THINK_ID, messages: [{ role: "user", content: "x" }], maxTokens: 4, tools: [{ name: "get_weather", parametersJson: JSON.stringify(WEATHER) }] });
        call.on("data", () => reject(new Error("the model answered")));
        call.on("error", resolve);
        call.on("end", () => reject(new Error("the stream ended without an error")));
      });
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      // As @grpc/grpc-js decodes it: ";" and ":" arrive as sent, not as %3B and %3A.
      expect(err.details).toBe((refused.json as ErrorBody).error.message);
      expect(errorInfoOf(err)).toMatchObject({ reason: "TOOLS_UNSUPPORTED", metadata: { field: "tools", model_id: THINK_ID } });
    } finally {
      client.close();
    }

    // With tool_choice "none" the tools are not shown and the model answers.
    const none = await post("/v1/chat/completions", { ...ask, model: THINK_ID, max_tokens: 4, tools: [WEATHER_TOOL], tool_choice: "none" });
    expect(none.status).toBe(200);
    expect((none.json as ChatBody).choices[0]!.finish_reason).toBe("length");
  });

  it("sampled calls keep every maxLength however the string is counted, never a 500", async () => {
    // Emoji and byte tokens in the tiny vocabulary: a character outside the BMP, or bytes that form no
    // character, count differently in the grammar and in node-llama-cpp's own check of the finished
    // call (string.length), which used to fail about one sampled call in five.
    const city = { type: "function" as const, function: { name: "find_city", parameters: { type: "object", properties: { name: { type: "string", maxLength: 20 }, country: { type: "string", maxLength: 8 } }, required: ["name", "country"], additionalProperties: false } } };
    const validCity = ajv.compile(city.function.parameters);
    for (let seed = 1; seed <= 24; seed++) {
      const { status, json, text } = await post("/v1/chat/completions", { ...ask, max_tokens: 300, temperature: 1, seed, tools: [city], tool_choice: "required" });
      expect(status, text).toBe(200);
      const choice = (json as ChatBody).choices[0]!;
      expect(choice.finish_reason).toBe("tool_calls");
      const args = JSON.parse(choice.message.tool_calls![0]!.function.arguments) as { name: string; country: string };
      expect(validCity(args), JSON.stringify(args)).toBe(true);
      expect(args.name.length).toBeLessThanOrEqual(20);
      expect(args.country.length).toBeLessThanOrEqual(8);
    }
  });

  it("an integer argument is a plain JSON integer at any temperature (node-llama-cpp's grammar once wrote exponents, and the call was refused)", async () => {
    const count = { type: "function" as const, function: { name: "count_days", parameters: { type: "object", properties: { days: { type: "integer" } }, required: ["days"] } } };
    for (let seed = 1; seed <= 24; seed++) {
      const { status, json, text } = await post("/v1/chat/completions", { ...ask, max_tokens: 100, temperature: 1, seed, tools: [count], tool_choice: "required" });
      expect(status, text).toBe(200);
      const args = (json as ChatBody).choices[0]!.message.tool_calls![0]!.function.arguments;
      expect(args, text).not.toMatch(/[eE]/);
      expect(Number.isSafeInteger((JSON.parse(args) as { days: number }).days), text).toBe(true);
    }
  });

  it("a tool message that answers no call is a 400 naming it", async () => {
    const { status, json } = await post("/v1/chat/completions", { ...ask, messages: [...ask.messages, { role: "tool", tool_call_id: "call_nope", content: "1" }] });
    expect(status).toBe(400);
    expect((json as ErrorBody).error.param).toBe("messages[1].tool_call_id");
  });

  it("a call sent back with arguments that are not JSON is a 400 naming them where the client put them", async () => {
    const call = { id: "call_1", type: "function", function: { name: "get_weather", arguments: "{not json" } };
    const { status, json } = await post("/v1/chat/completions", {
      ...ask,
      messages: [...ask.messages, { role: "assistant", content: null, tool_calls: [call] }, { role: "tool", tool_call_id: "call_1", content: "sunny" }],
    });
    expect(status).toBe(400);
    expect((json as ErrorBody).error).toMatchObject({ param: "messages[1].tool_calls[0].function.arguments", message: "messages[1].tool_calls[0].function.arguments is not valid JSON" });
  });
});

describe("structured output over /v1", () => {
  it("json_schema output validates against the schema", async () => {
    const { status, json } = await post("/v1/chat/completions", { ...ask, max_tokens: 200, response_format: { type: "json_schema", json_schema: { name: "person", schema: PERSON, strict: true } } });
    expect(status).toBe(200);
    const content = (json as ChatBody).choices[0]!.message.content!;
    expect(validPerson(JSON.parse(content)), content).toBe(true);
  });

  it("a keyword the grammar cannot enforce is a 400 naming it", async () => {
    const schema = { type: "object", properties: { code: { type: "string", pattern: "^[A-Z]{3}$" } } };
    const { status, json } = await post("/v1/chat/completions", { ...ask, response_format: { type: "json_schema", json_schema: { name: "c", schema } } });
    expect(status).toBe(400);
    expect((json as ErrorBody).error).toMatchObject({ type: "invalid_request_error", param: "response_format.json_schema.schema" });
    expect((json as ErrorBody).error.message).toContain('"pattern"');
  });

  it("a schema no value can match, or that is not a JSON Schema, is a 400 naming the keyword", async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ type: "foo" }, '"foo" is not a JSON Schema type'],
      [{ enum: [] }, "/enum: is empty"],
      [{ type: "object", properties: { tags: { type: "array", minItems: 3, maxItems: 1 } } }, "minItems 3 is above maxItems 1"],
      [{ anyOf: [] }, "/anyOf: is empty"],
      [{ type: "string", maxLength: -1 }, "/maxLength: must be a whole number"],
    ];
    for (const [schema, problem] of cases) {
      const { status, json } = await post("/v1/chat/completions", { ...ask, max_tokens: 20, response_format: { type: "json_schema", json_schema: { name: "s", schema } } });
      expect(status, JSON.stringify(schema)).toBe(400);
      expect((json as ErrorBody).error.param).toBe("response_format.json_schema.schema");
      expect((json as ErrorBody).error.message).toContain(problem);
    }
    const { status, json } = await post("/v1/chat/completions", { ...ask, response_format: { type: "xml" } });
    expect(status).toBe(400);
    expect((json as ErrorBody).error.message).toContain('"text", "json_object", "json_schema"');
    const missing = await post("/v1/chat/completions", { ...ask, response_format: { type: "json_schema" } });
    expect(missing.status).toBe(400);
    expect((missing.json as ErrorBody).error.param).toBe("response_format.json_schema");
  });
});

describe("the Vercel AI SDK (a second, independent client)", () => {
  const provider = () => createOpenAICompatible({ name: "llmlb", baseURL: `${node.httpUrl}/v1`, supportsStructuredOutputs: true });

  it("gets the forced tool call, non-streamed and streamed", async () => {
    const weather = tool({ description: "Weather forecast for a city", inputSchema: jsonSchema(WEATHER) });
    const options = { model: provider().chatModel(TINY_CHAT_ID), prompt: "What is the weather in Paris?", tools: { get_weather: weather }, toolChoice: { type: "tool", toolName: "get_weather" }, maxOutputTokens: 120, temperature: 0 } as const;
    const result = await generateText(options);
    expect(result.finishReason).toBe("tool-calls");
    expect(result.toolCalls).toHaveLength(1);
    expect(result.toolCalls[0]!.toolName).toBe("get_weather");
    expect(validWeather(result.toolCalls[0]!.input)).toBe(true);

    const streamed = streamText(options);
    const calls = await streamed.toolCalls;
    expect(calls).toHaveLength(1);
    expect(calls[0]!.input).toEqual(result.toolCalls[0]!.input);
  });

  it("gets a json_schema object", async () => {
    const { object } = await generateObject({ model: provider().chatModel(TINY_CHAT_ID), schema: jsonSchema(PERSON), prompt: "Describe a person.", maxOutputTokens: 200, temperature: 0 });
    expect(validPerson(object)).toBe(true);
  });
});

describe("reasoning over /v1", () => {
  const think = { model: THINK_ID, messages: [{ role: "user", content: "Why is the sky blue?" }], max_tokens: 24, temperature: 0 };

  it("separates reasoning_content from content, streamed and not, and enable_thinking: false turns it off", async () => {
    const full = (await post("/v1/chat/completions", think)).json as ChatBody;
    const message = full.choices[0]!.message;
    expect(message.reasoning_content?.length).toBeGreaterThan(0);
    expect(`${message.reasoning_content}${message.content}`).not.toContain("<think>");

    const { text } = await post("/v1/chat/completions", { ...think, stream: true });
    const deltas = sseChunks(text).map((c) => (c.choices as Array<{ delta: { reasoning_content?: string; content?: string } }>)[0]!.delta);
    expect(deltas.map((d) => d.reasoning_content ?? "").join("")).toBe(message.reasoning_content);
    expect(deltas.map((d) => d.content ?? "").join("")).toBe(message.content);

    // The thinking goes back on the assistant message for the next turn.
    const next = await post("/v1/chat/completions", {
      ...think,
      max_tokens: 4,
      messages: [...think.messages, { role: "assistant", content: message.content, reasoning_content: message.reasoning_content }, { role: "user", content: "And at night?" }],
    });
    expect(next.status).toBe(200);

    const off = (await post("/v1/chat/completions", { ...think, chat_template_kwargs: { enable_thinking: false } })).json as ChatBody;
    expect(off.choices[0]!.message.reasoning_content).toBeUndefined();
    expect(off.usage.completion_tokens).toBeGreaterThan(0);
    // OpenAI's efforts below low: "none" turns thinking off as enable_thinking false does, "minimal" thinks as "low".
    const none = (await post("/v1/chat/completions", { ...think, reasoning_effort: "none" })).json as ChatBody;
    expect(none.choices[0]!.message).toEqual(off.choices[0]!.message);
    const minimal = (await post("/v1/chat/completions", { ...think, reasoning_effort: "minimal" })).json as ChatBody;
    const low = (await post("/v1/chat/completions", { ...think, reasoning_effort: "low" })).json as ChatBody;
    expect(minimal.choices[0]!.message).toEqual(low.choices[0]!.message);
  });
});

describe("logprobs, n, completions, embeddings, strict fields", () => {
  it("logprobs: one entry per token, each <= 0, top_logprobs sorted", async () => {
    const body = (await post("/v1/chat/completions", { ...ask, max_tokens: 8, logprobs: true, top_logprobs: 3 })).json as ChatBody;
    const content = body.choices[0]!.logprobs!.content;
    expect(content).toHaveLength(body.usage.completion_tokens);
    expect(content.map((c) => c.token).join("")).toBe(body.choices[0]!.message.content);
    for (const entry of content) {
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(Buffer.from(entry.bytes).toString("utf8")).toBe(entry.token);
      const tops = entry.top_logprobs.map((t) => t.logprob);
      expect(tops).toHaveLength(3);
      expect(tops).toEqual([...tops].sort((a, b) => b - a));
    }
  });

  it("n gives that many choices, usage counting the prompt once", async () => {
    const one = (await post("/v1/chat/completions", { ...ask, max_tokens: 4 })).json as ChatBody;
    const two = (await post("/v1/chat/completions", { ...ask, max_tokens: 4, n: 2, temperature: 1, seed: 5 })).json as ChatBody;
    expect(two.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(two.usage.prompt_tokens).toBe(one.usage.prompt_tokens);
    expect(two.usage.completion_tokens).toBe(8);
    expect((await post("/v1/chat/completions", { ...ask, n: 5 })).status).toBe(400);
  });

  it("samples each choice and each request anew when no seed is given", async () => {
    const sampled = { ...ask, max_tokens: 24, temperature: 1.5 };
    const many = (await post("/v1/chat/completions", { ...sampled, n: 4 })).json as ChatBody;
    const texts = many.choices.map((c) => c.message.content);
    // node-llama-cpp's own default seed is the current second: every choice was the same answer.
    expect(new Set(texts).size).toBeGreaterThan(1);
    const again = (await post("/v1/chat/completions", sampled)).json as ChatBody;
    const once = (await post("/v1/chat/completions", sampled)).json as ChatBody;
    expect(new Set([...texts, again.choices[0]!.message.content, once.choices[0]!.message.content]).size).toBeGreaterThan(2);
  });

  it("streams n choices, each with its own index and finish", async () => {
    const { text } = await post("/v1/chat/completions", { ...ask, max_tokens: 3, n: 2, stream: true, stream_options: { include_usage: true } });
    const chunks = sseChunks(text);
    const choices = chunks.flatMap((c) => c.choices as Array<{ index: number; finish_reason: string | null }>);
    expect(choices.filter((c) => c.finish_reason === "length").map((c) => c.index).sort()).toEqual([0, 1]);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect((chunks.at(-1)!.usage as { completion_tokens: number }).completion_tokens).toBe(6);
  });

  it("/v1/completions logprobs in the legacy shape", async () => {
    const res = (await post("/v1/completions", { model: TINY_CHAT_ID, prompt: "Once upon a time", max_tokens: 4, temperature: 0, logprobs: 2 })).json as {
      choices: Array<{ text: string; logprobs: { tokens: string[]; token_logprobs: number[]; top_logprobs: Array<Record<string, number>>; text_offset: number[] } }>;
    };
    const { text, logprobs } = res.choices[0]!;
    expect(logprobs.tokens).toHaveLength(4);
    expect(logprobs.tokens.join("")).toBe(text);
    expect(logprobs.token_logprobs.every((l) => l <= 0)).toBe(true);
    expect(logprobs.top_logprobs.every((top) => Object.keys(top).length === 2)).toBe(true);
    expect(logprobs.text_offset[0]).toBe(0);
  });

  it("/v1/completions streamed with logprobs: each chunk carries its own tokens, offsets count from the start of the text", async () => {
    const request = { model: TINY_CHAT_ID, prompt: "Once upon a time", max_tokens: 8, temperature: 0, logprobs: 0, echo: true };
    const whole = (await post("/v1/completions", request)).json as { choices: Array<{ text: string; logprobs: { tokens: string[]; text_offset: number[] } }> };
    const { text } = await post("/v1/completions", { ...request, stream: true });
    const chunks = sseChunks(text).map((c) => (c.choices as Array<{ text: string; logprobs: { tokens: string[]; text_offset: number[] } }>)[0]!);
    let sent = "";
    for (const [k, chunk] of chunks.entries()) {
      const generated = k === 0 ? chunk.text.slice(request.prompt.length) : chunk.text;
      expect(chunk.logprobs.tokens.join(""), `chunk ${k}`).toBe(generated);
      let at = sent.length + (k === 0 ? request.prompt.length : 0);
      for (const [i, token] of chunk.logprobs.tokens.entries()) {
        expect(chunk.logprobs.text_offset[i]).toBe(at);
        at += token.length;
      }
      sent += chunk.text;
    }
    expect(sent).toBe(whole.choices[0]!.text);
    expect(chunks.flatMap((c) => c.logprobs.tokens)).toEqual(whole.choices[0]!.logprobs.tokens);
    expect(chunks.flatMap((c) => c.logprobs.text_offset)).toEqual(whole.choices[0]!.logprobs.text_offset);
  });

  it("/v1/completions stops at a stop string that starts inside a token or holds a space, streamed and not", async () => {
    const request = { model: TINY_CHAT_ID, prompt: "Hello", max_tokens: 20, temperature: 0 };
    const full = ((await post("/v1/completions", request)).json as { choices: Array<{ text: string }> }).choices[0]!.text;
    // Stop strings cut from the greedy answer itself: one across a space (SentencePiece tokens carry it in front).
    const space = full.indexOf(" ", 2);
    expect(space).toBeGreaterThan(1);
    for (const stop of [full.slice(space - 1, space + 2), full.slice(space, space + 3)]) {
      const cut = full.indexOf(stop);
      const res = (await post("/v1/completions", { ...request, stop, logprobs: 0 })).json as { choices: Array<{ text: string; finish_reason: string; logprobs: { tokens: string[] } }> };
      expect(res.choices[0], JSON.stringify(stop)).toMatchObject({ text: full.slice(0, cut), finish_reason: "stop" });
      // Logprobs for every token whose text starts before the stop (the last may run into it).
      const tokens = res.choices[0]!.logprobs.tokens;
      expect(tokens.join("").startsWith(full.slice(0, cut)), tokens.join("|")).toBe(true);
      expect(tokens.slice(0, -1).join("").length).toBeLessThan(cut);
      const { text } = await post("/v1/completions", { ...request, stop: [stop], stream: true });
      const chunks = sseChunks(text).map((c) => (c.choices as Array<{ text: string; finish_reason: string | null }>)[0]!);
      expect(chunks.map((c) => c.text).join("")).toBe(full.slice(0, cut));
      expect(chunks.at(-1)!.finish_reason).toBe("stop");
    }
  });

  it("/v1/completions finishes a character split over two tokens past max_tokens, and usage counts every token (README: Sampling)", async () => {
    // With this model, greedy after "a": "+", " I", then byte 224 (the first piece of a character) and one more token.
    const res = (await post("/v1/completions", { model: TINY_CHAT_ID, prompt: "a", max_tokens: 3, temperature: 0, logprobs: 0 })).json as {
      choices: Array<{ text: string; finish_reason: string; logprobs: { tokens: string[] } }>;
      usage: { completion_tokens: number };
    };
    const [choice] = res.choices;
    expect(choice!.finish_reason).toBe("length");
    expect(choice!.logprobs.tokens).toHaveLength(4);
    expect(res.usage.completion_tokens).toBe(4);
    expect(choice!.logprobs.tokens.join("")).toBe(choice!.text);
  });

  it("/v1/completions takes several prompts and echoes them", async () => {
    const res = await openai.completions.create({ model: TINY_CHAT_ID, prompt: ["Once upon", "The sky"], echo: true, max_tokens: 3, temperature: 0 });
    expect(res.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(res.choices[0]!.text.startsWith("Once upon")).toBe(true);
    expect(res.choices[1]!.text.startsWith("The sky")).toBe(true);
    expect(res.usage!.completion_tokens).toBe(6);
    const plain = await openai.completions.create({ model: TINY_CHAT_ID, prompt: "The sky", max_tokens: 3, temperature: 0 });
    expect(res.choices[1]!.text).toBe(`The sky${plain.choices[0]!.text}`);
  });

  it("/v1/completions runs more choices than go at once, each choice answered with its prompt", async () => {
    const prompts = ["Once upon", "The sky", "In the"];
    const whole = await openai.completions.create({ model: TINY_CHAT_ID, prompt: prompts, n: 2, echo: true, max_tokens: 3, temperature: 0 });
    expect(whole.choices.map((c) => c.index)).toEqual([0, 1, 2, 3, 4, 5]);
    whole.choices.forEach((c) => expect(c.text.startsWith(prompts[Math.floor(c.index / 2)]!)).toBe(true));
    expect(whole.usage!.completion_tokens).toBe(18);
    // Streamed: 6 calls, 4 at once, every one finished once, usage summed, [DONE] last.
    const stream = await openai.completions.create({ model: TINY_CHAT_ID, prompt: prompts, n: 2, max_tokens: 3, temperature: 0, stream: true, stream_options: { include_usage: true } });
    const finished: number[] = [];
    let completionTokens = 0;
    for await (const chunk of stream) {
      for (const choice of chunk.choices) if (choice.finish_reason) finished.push(choice.index);
      if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
    }
    expect(finished.sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(completionTokens).toBe(18);
  });

  it("/v1/completions starts a further prompt as soon as an earlier one ends, not after the slowest of its wave", async () => {
    // Greedy answers of the random model: a stop string that ends one prompt's answer early and
    // appears in none of four others, which run to max_tokens.
    const candidates = Array.from({ length: 16 }, (_, i) => `Story ${i}:`);
    const probe = await openai.completions.create({ model: TINY_CHAT_ID, prompt: candidates, max_tokens: 40, temperature: 0 });
    const texts = probe.choices.sort((a, b) => a.index - b.index).map((c) => c.text);
    let picked: { stop: string; prompts: string[] } | undefined;
    for (let short = 0; short < texts.length && !picked; short++) {
      const stop = texts[short]!.slice(4, 10);
      const others = texts.flatMap((text, i) => (i !== short && !text.includes(stop) ? [candidates[i]!] : []));
      if (stop.length === 6 && others.length >= 4) picked = { stop, prompts: [candidates[short]!, ...others.slice(0, 4)] };
    }
    expect(picked, "a stop string that ends one candidate early and no four others").toBeDefined();
    const { stop, prompts } = picked!;

    const stream = await openai.completions.create({ model: TINY_CHAT_ID, prompt: prompts, max_tokens: 40, temperature: 0, stop, stream: true });
    const order: string[] = [];
    for await (const chunk of stream) {
      for (const choice of chunk.choices) order.push(choice.finish_reason ? `end ${choice.index}` : `text ${choice.index}`);
    }
    // The fifth prompt started when the first ended: its text streams while the long ones still run
    // (in waves of four it started only after all four had ended).
    const lastLongEnd = Math.max(...[1, 2, 3].map((i) => order.indexOf(`end ${i}`)));
    expect(order.indexOf("text 4")).toBeGreaterThanOrEqual(0);
    expect(order.indexOf("text 4")).toBeLessThan(lastLongEnd);
  });

  it("/v1/completions names the prompt an error is about as sent (prompt[i]), whole and streamed", async () => {
    const tooLong = "x ".repeat(1100);
    const whole = await post("/v1/completions", { model: TINY_CHAT_ID, prompt: ["Once upon", tooLong, "The sky"], max_tokens: 2, temperature: 0 });
    expect(whole.status).toBe(400);
    expect((whole.json as { error: { param: string; message: string } }).error).toMatchObject({ param: "prompt[1]", message: expect.stringMatching(/^prompt\[1\]: the prompt has/) });
    // The sixth prompt starts once the stream is open: its error is the stream's last event.
    const streamed = await post("/v1/completions", { model: TINY_CHAT_ID, prompt: ["a", "b", "c", "d", "e", tooLong], max_tokens: 2, temperature: 0, stream: true });
    const last = JSON.parse(streamed.text.trim().split("\n").filter((l) => l.startsWith("data: ")).at(-1)!.slice(6)) as { error?: { param: string } };
    expect(last.error).toMatchObject({ param: "prompt[5]" });
  });

  it("embeddings dimensions halves the vector with unit norm; more than the model's is a 400", async () => {
    const full = await openai.embeddings.create({ model: TINY_EMBED_ID, input: "hello", encoding_format: "float" });
    const size = full.data[0]!.embedding.length;
    const half = await openai.embeddings.create({ model: TINY_EMBED_ID, input: "hello", dimensions: size / 2, encoding_format: "float" });
    expect(half.data[0]!.embedding).toHaveLength(size / 2);
    expect(Math.hypot(...half.data[0]!.embedding)).toBeCloseTo(1, 5);
    const tooMany = await post("/v1/embeddings", { model: TINY_EMBED_ID, input: "hello", dimensions: size + 1 });
    expect(tooMany.status).toBe(400);
    expect((tooMany.json as ErrorBody).error.param).toBe("dimensions");
  });

  it("an embeddings error about one input names it as sent (input, input[i]), not by the gRPC field", async () => {
    const single = await post("/v1/embeddings", { model: TINY_EMBED_ID, input: "" });
    expect(single.status).toBe(400);
    expect((single.json as ErrorBody).error).toMatchObject({ param: "input", message: "input is empty" });
    const listed = await post("/v1/embeddings", { model: TINY_EMBED_ID, input: ["hello", ""] });
    expect((listed.json as ErrorBody).error).toMatchObject({ param: "input[1]", message: "input[1] is empty" });
  });

  it("a field the node does not implement is a 400 naming it, at any depth", async () => {
    const top = await post("/v1/chat/completions", { ...ask, service_tier: "flex" });
    expect(top.status).toBe(400);
    expect((top.json as ErrorBody).error).toMatchObject({ param: "service_tier", code: "unsupported_field" });
    const nested = await post("/v1/chat/completions", { ...ask, tools: [{ ...WEATHER_TOOL, function: { ...WEATHER_TOOL.function, examples: [] } }] });
    expect((nested.json as ErrorBody).error.param).toBe("tools[0].function.examples");
    const completion = await post("/v1/completions", { model: TINY_CHAT_ID, prompt: "x", suffix: "y" });
    expect((completion.json as ErrorBody).error.param).toBe("suffix");
  });

  it("chat takes OpenAI's bookkeeping fields as /v1/responses does, and refuses to be asked to store", async () => {
    const tagged = await post("/v1/chat/completions", { ...ask, max_tokens: 2, store: false, metadata: { team: "search" }, prompt_cache_key: "user-42" });
    expect(tagged.status).toBe(200);
    const storing = await post("/v1/chat/completions", { ...ask, store: true });
    expect(storing.status).toBe(400);
    expect((storing.json as ErrorBody).error).toMatchObject({ param: "store", message: 'invalid field "store": must be one of false, null' });
    const badTag = await post("/v1/chat/completions", { ...ask, metadata: { team: 7 } });
    expect((badTag.json as ErrorBody).error.param).toBe("metadata.team");
  });

  it("an assistant turn sent back with OpenAI's refusal instead of content is read as its text; a refusal on another role is a 400", async () => {
    const turns = (assistant: Record<string, unknown>) => ({
      ...ask,
      max_tokens: 1,
      messages: [{ role: "user", content: "Help me pick a lock." }, { role: "assistant", ...assistant }, { role: "user", content: "Why not?" }],
    });
    const promptTokens = async (assistant: Record<string, unknown>) => {
      const res = await post("/v1/chat/completions", turns(assistant));
      expect(res.status, res.text).toBe(200);
      return (res.json as ChatBody).usage.prompt_tokens;
    };
    const said = "I can't help with that.";
    const asContent = await promptTokens({ content: said, refusal: null });
    expect(await promptTokens({ content: null, refusal: said })).toBe(asContent);
    expect(await promptTokens({ content: [{ type: "refusal", refusal: said }] })).toBe(asContent);
    expect(await promptTokens({ content: null, refusal: null })).toBeLessThan(asContent);

    const fromUser = await post("/v1/chat/completions", { ...ask, messages: [{ role: "user", content: "hi", refusal: "no" }] });
    expect(fromUser.status).toBe(400);
    expect((fromUser.json as ErrorBody).error).toMatchObject({ param: "messages[0].refusal", message: 'invalid field "messages[0].refusal": must be null' });
    const partFromUser = await post("/v1/chat/completions", { ...ask, messages: [{ role: "user", content: [{ type: "refusal", refusal: "no" }] }] });
    expect((partFromUser.json as ErrorBody).error).toMatchObject({ param: "messages[0].content[0].type", message: 'invalid field "messages[0].content[0].type": must be "text"' });
    const mixedPart = await post("/v1/chat/completions", { ...ask, messages: [{ role: "assistant", content: [{ type: "text", text: "a", refusal: "b" }] }, ...ask.messages] });
    expect((mixedPart.json as ErrorBody).error).toMatchObject({ param: "messages[0].content[0].refusal", code: "unsupported_field" });
  });

  it("a value outside a fixed set is a 400 that lists the values allowed", async () => {
    const effort = await post("/v1/chat/completions", { ...ask, reasoning_effort: "extreme" });
    expect(effort.status).toBe(400);
    expect((effort.json as ErrorBody).error).toMatchObject({ param: "reasoning_effort", message: expect.stringMatching(/^invalid field "reasoning_effort": must be one of (?:"[a-z]+", )+"high"/) });
    const kind = await post("/v1/chat/completions", { ...ask, tools: [{ ...WEATHER_TOOL, type: "tool" }] });
    expect((kind.json as ErrorBody).error).toMatchObject({ param: "tools[0].type", message: 'invalid field "tools[0].type": must be "function"' });
  });
});

describe("JSON nested too deep", () => {
  /** A tool-parameters schema `levels` objects deep, as text (JSON.stringify itself overflows on such data). */
  const deepSchema = (levels: number) => '{"type":"object","properties":{"a":'.repeat(levels) + '{"type":"string"}' + '},"required":["a"]}'.repeat(levels);

  it("is a 400 saying so over /v1 and INVALID_ARGUMENT naming the field over gRPC; the node keeps serving", async () => {
    for (const levels of [200, 5000, 50_000]) {
      const body = `{"model":"${TINY_CHAT_ID}","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"tool_choice":"required","tools":[{"type":"function","function":{"name":"f","parameters":${deepSchema(levels)}}}]}`;
      const res = await fetch(`${node.httpUrl}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
      const error = ((await res.json()) as ErrorBody).error;
      expect(res.status, error.message).toBe(400);
      expect(error.message).toMatch(/nests objects and arrays more than 128 levels deep/);
    }

    const client = grpcJsClient(InferenceService, node.grpcUrl);
    try {
      for (const levels of [200, 2000]) {
        const err = await new Promise<grpc.ServiceError>((resolve, reject) => {
          const call = client.stream("chat", { modelId: TINY_CHAT_ID, messages: [{ role: "user", content: "x" }], maxTokens: 4, tools: [{ name: "f", parametersJson: deepSchema(levels) }], toolChoice: { mode: "required" } });
          call.on("data", () => reject(new Error("the model answered")));
          call.on("error", resolve);
          call.on("end", () => reject(new Error("the stream ended without an error")));
        });
        expect(err.code, err.details).toBe(grpc.status.INVALID_ARGUMENT);
        expect(errorInfoOf(err)).toMatchObject({ reason: "INVALID_ARGUMENT", metadata: { field: "tools[0].parameters_json" } });
      }
    } finally {
      client.close();
    }

    const after = await post("/v1/chat/completions", { ...ask, max_tokens: 4 });
    expect(after.status).toBe(200);
  });
});

describe("gRPC from Python", () => {
  it("grpcio gets the same forced tool call, streamed in pieces", async () => {
    const tmp = tempDir("llmlb-descriptor-");
    try {
      const descriptorSet = path.join(tmp.dir, "llmlb.binpb");
      execFileSync(path.join(root, "node_modules/.bin/buf"), ["build", "-o", descriptorSet], { cwd: root });
      const address = node.grpcUrl.replace("http://", "");
      const script = path.join(import.meta.dirname, "fixtures/python_tool_call.py");
      const { stdout } = await promisify(execFile)(PYTHON, [script, descriptorSet, address, TINY_CHAT_ID, JSON.stringify(WEATHER)], { timeout: 60_000 });
      const result = JSON.parse(stdout) as { calls: Array<{ id: string; name: string; arguments: string }>; finish_reason: string };
      expect(result.finish_reason).toBe("tool_calls");
      expect(result.calls).toHaveLength(1);
      expect(result.calls[0]).toMatchObject({ id: expect.stringMatching(/^call_/), name: "get_weather" });
      expect(validWeather(JSON.parse(result.calls[0]!.arguments))).toBe(true);

      // The same request over /v1 gives the same arguments (greedy, same grammar).
      const { json } = await post("/v1/chat/completions", { ...ask, tools: [{ type: "function", function: { name: "get_weather", description: "Weather of a city", parameters: WEATHER } }], tool_choice: { type: "function", function: { name: "get_weather" } } });
      expect((json as ChatBody).choices[0]!.message.tool_calls![0]!.function.arguments).toBe(result.calls[0]!.arguments);
    } finally {
      tmp.cleanup();
    }
  });
});
