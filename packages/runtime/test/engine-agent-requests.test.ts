import fs from "node:fs";
import path from "node:path";
import { Ajv } from "ajv";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHATML_TEMPLATE, THINKING_TEMPLATE, TOOLS_TEMPLATE, writeTinyModel } from "../../../testkit/gguf/tiny-gguf.js";
import type { ChatInput, GenerationEvent, JsonSchema, TokenLogprob, ToolCallDelta } from "../src/index.js";
import { engineFixture, reasonOf, user, type EngineFixture } from "./fixtures/engine-fixtures.js";

/** Everything a stream produced, with tool-call pieces joined by index as OpenAI clients do. */
interface Answer {
  text: string;
  reasoning: string;
  calls: Array<{ id: string; name: string; arguments: string }>;
  pieces: ToolCallDelta[];
  /** The tool-call indexes of each delta, in order. */
  deltaIndexes: number[][];
  logprobs: TokenLogprob[];
  end: Extract<GenerationEvent, { type: "end" }>;
}

async function answer(events: AsyncIterable<GenerationEvent>): Promise<Answer> {
  const out: Omit<Answer, "end"> = { text: "", reasoning: "", calls: [], pieces: [], deltaIndexes: [], logprobs: [] };
  for await (const event of events) {
    if (event.type === "end") return { ...out, end: event };
    out.text += event.text;
    out.reasoning += event.reasoning ?? "";
    out.logprobs.push(...(event.logprobs ?? []));
    if (event.toolCalls?.length) out.deltaIndexes.push(event.toolCalls.map((piece) => piece.index));
    for (const piece of event.toolCalls ?? []) {
      out.pieces.push(piece);
      const call = (out.calls[piece.index] ??= { id: "", name: "", arguments: "" });
      if (piece.id) call.id = piece.id;
      if (piece.name) call.name = piece.name;
      call.arguments += piece.arguments;
    }
  }
  throw new Error("the stream ended without an end event");
}

const WEATHER = {
  type: "object",
  properties: {
    city: { type: "string", maxLength: 20 },
    unit: { enum: ["celsius", "fahrenheit"] },
    days: { type: "integer" },
  },
  required: ["city", "unit", "days"],
  additionalProperties: false,
} as const;
const TOOLS = [
  { name: "get_weather", description: "Weather forecast for a city", parameters: WEATHER },
  { name: "get_time", description: "Current time in a timezone", parameters: { type: "object", properties: { zone: { type: "string", maxLength: 12 } }, required: ["zone"] } },
];

const ajv = new Ajv({ strict: false });
const ajv2020 = new Ajv2020({ strict: false });
const validWeather = ajv.compile(WEATHER);

let fx: EngineFixture;
const chat = (input: Partial<ChatInput>) =>
  answer(fx.engine.chat({ modelId: "tiny", messages: user("What is the weather in Paris?"), maxTokens: 120, temperature: 0, ...input }));

beforeAll(async () => {
  const dir = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? "/tmp"), "llmlb-think-"));
  const thinking = writeTinyModel(path.join(dir, "think.gguf"), { chatTemplate: THINKING_TEMPLATE }).path;
  fx = engineFixture({
    models: {
      tiny: {},
      "tiny-think": { file: thinking },
      // Registered chat templates, rendered by node-llama-cpp as Jinja: one with tool syntax, one without.
      "tiny-hermes": { entry: { chatTemplate: TOOLS_TEMPLATE } },
      "tiny-plain-jinja": { entry: { chatTemplate: CHATML_TEMPLATE } },
      "tiny-embed": { entry: { capabilities: ["embeddings"] } },
    },
    settings: { parallelism: 2 },
  });
});
afterAll(async () => {
  await fx?.cleanup();
});

describe("tools", () => {
  it("a forced call whose opening does not fit after the prompt is INVALID_ARGUMENT, whatever the sequence held before", async () => {
    const CONTEXT = 1024;
    const forced = (words: number) => ({ modelId: "tiny-hermes", messages: user("x ".repeat(words)), tools: TOOLS, toolChoice: "required" as const, maxTokens: 8 });
    // The longest prompt the node takes (it keeps two tokens free): the call's opening, which
    // LlamaChat writes after it, does not fit.
    const base = (await chat(forced(0))).end.usage.promptTokens;
    let words = CONTEXT - base;
    let refused = await reasonOf(answer(fx.engine.chat(forced(words))));
    while (words > 0 && / and at most \d+ fit /.test(refused.message)) refused = await reasonOf(answer(fx.engine.chat(forced(--words))));
    expect(refused.metadata).toMatchObject({ field: "messages", context_length: String(CONTEXT) });
    expect(Number(refused.metadata.prompt_tokens)).toBeGreaterThan(CONTEXT - 4);
    expect(refused.message).toMatch(/with the opening of the tool call the model must make they do not fit the model's context of 1024 tokens/);

    // The same request after an unforced one left its sequence nearly full: the same refusal, not an
    // empty answer cut off "by the context" (the sequence's length was the earlier request's).
    const unforced = await chat({ ...forced(words), toolChoice: "auto" });
    expect(unforced.end.usage.promptTokens).toBeGreaterThan(CONTEXT - 40);
    expect(await reasonOf(answer(fx.engine.chat(forced(words))))).toMatchObject({ reason: "INVALID_ARGUMENT" });
  });

  it('tool_choice "required" gives a call whose arguments validate against the schema', async () => {
    const got = await chat({ tools: TOOLS, toolChoice: "required" });
    expect(got.end.finishReason).toBe("tool_calls");
    expect(got.calls.length).toBeGreaterThanOrEqual(1);
    for (const call of got.calls) {
      expect(call.id).toMatch(/^call_[A-Za-z0-9_-]+$/);
      expect(["get_weather", "get_time"]).toContain(call.name);
      const args: unknown = JSON.parse(call.arguments);
      if (call.name === "get_weather") expect(validWeather(args), JSON.stringify(validWeather.errors)).toBe(true);
      else expect(args).toMatchObject({ zone: expect.any(String) });
    }
    // Streamed as OpenAI does: the first piece of a call has id and name, later ones only
    // arguments, and a delta holds at most one piece per call.
    const first = got.pieces[0]!;
    expect(first).toMatchObject({ index: 0, id: got.calls[0]!.id, name: got.calls[0]!.name, arguments: "" });
    expect(got.pieces.slice(1).filter((p) => p.index === 0).every((p) => p.id === undefined && p.name === undefined)).toBe(true);
    for (const indexes of got.deltaIndexes) expect(new Set(indexes).size, JSON.stringify(got.deltaIndexes)).toBe(indexes.length);
  });

  it("a named function is the one called, with arguments valid against its schema", async () => {
    const got = await chat({ tools: TOOLS, toolChoice: { function: "get_weather" }, parallelToolCalls: false });
    expect(got.end.finishReason).toBe("tool_calls");
    expect(got.calls).toHaveLength(1);
    expect(got.calls[0]!.name).toBe("get_weather");
    expect(validWeather(JSON.parse(got.calls[0]!.arguments)), got.calls[0]!.arguments).toBe(true);
  });

  it("a call that runs to the end of the context ends with length, as a cut-off answer does", async () => {
    const NOTE = { name: "note", description: "Keep a note", parameters: { type: "object", properties: { text: { type: "string" } }, required: ["text"] } };
    for (const toolChoice of ["required", { function: "note" }] as const) {
      const got = await chat({ tools: [NOTE], toolChoice, maxTokens: undefined });
      expect(got.end.finishReason, JSON.stringify(toolChoice)).toBe("length");
      expect(got.end.usage.promptTokens + got.end.usage.completionTokens).toBeLessThanOrEqual(1024);
    }
  });

  it("takes the call and its result back for the next turn", async () => {
    const first = await chat({ tools: TOOLS, toolChoice: { function: "get_time" } });
    const call = first.calls[0]!;
    const got = await chat({
      tools: TOOLS,
      toolChoice: "none",
      maxTokens: 8,
      messages: [
        { role: "user", content: "What time is it in Tokyo?" },
        { role: "assistant", content: "", toolCalls: [{ id: call.id, name: call.name, arguments: call.arguments }] },
        { role: "tool", toolCallId: call.id, content: '{"time":"09:00"}' },
      ],
    });
    expect(got.calls).toEqual([]);
    expect(got.end.finishReason).toBe("length");
    expect(got.end.usage.completionTokens).toBe(8);
  });

  it("refuses a tool message that answers no call, and a call left without its result", async () => {
    const orphan = await reasonOf(chat({ messages: [{ role: "user", content: "hi" }, { role: "tool", toolCallId: "call_x", content: "1" }] }));
    expect(orphan).toMatchObject({ reason: "INVALID_ARGUMENT", metadata: { field: "messages[1].tool_call_id" } });
    const unanswered = await reasonOf(
      chat({ messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "", toolCalls: [{ id: "call_y", name: "get_time", arguments: "{}" }] }] }),
    );
    expect(unanswered).toMatchObject({ reason: "INVALID_ARGUMENT", metadata: { field: "messages[1].tool_calls[0]" } });
  });

  it("refuses tools for a model whose own template has no tool syntax, naming the model and the field", async () => {
    // A registered template and a GGUF template node-llama-cpp does not recognise, neither rendering tools.
    for (const modelId of ["tiny-plain-jinja", "tiny-think"]) {
      for (const toolChoice of ["auto", "required", { function: "get_time" }] as const) {
        const refused = await reasonOf(chat({ modelId, tools: TOOLS, toolChoice }));
        expect(refused).toMatchObject({ reason: "TOOLS_UNSUPPORTED", metadata: { field: "tools", model_id: modelId } });
        expect(refused.message).toContain(`model "${modelId}" cannot use tools`);
        expect(refused.message).toContain("without tools");
      }
    }
    // tool_choice "none" shows no tools, so the model answers as usual.
    const none = await chat({ modelId: "tiny-plain-jinja", tools: TOOLS, toolChoice: "none", maxTokens: 5 });
    expect(none.calls).toEqual([]);
    expect(none.end).toMatchObject({ finishReason: "length", usage: { completionTokens: 5 } });
  });

  it("a registered template that renders tools gets calls, and takes their results back", async () => {
    const got = await chat({ modelId: "tiny-hermes", tools: TOOLS, toolChoice: { function: "get_weather" }, parallelToolCalls: false });
    expect(got.end.finishReason).toBe("tool_calls");
    expect(got.calls).toHaveLength(1);
    expect(got.calls[0]!.name).toBe("get_weather");
    expect(validWeather(JSON.parse(got.calls[0]!.arguments)), got.calls[0]!.arguments).toBe(true);
    const call = got.calls[0]!;
    const next = await chat({
      modelId: "tiny-hermes",
      tools: TOOLS,
      maxTokens: 6,
      toolChoice: "none",
      messages: [
        { role: "user", content: "What is the weather in Paris?" },
        { role: "assistant", content: "", toolCalls: [call] },
        { role: "tool", toolCallId: call.id, content: '{"forecast":"sunny"}' },
      ],
    });
    expect(next.end).toMatchObject({ finishReason: "length", usage: { completionTokens: 6 } });
  });

  it("refuses a schema keyword the grammar cannot enforce, naming it", async () => {
    const refused = await reasonOf(chat({ tools: [{ name: "f", parameters: { type: "object", properties: { n: { type: "string", pattern: "^a+$" } } } }], toolChoice: "required" }));
    expect(refused.reason).toBe("INVALID_ARGUMENT");
    expect(refused.message).toContain('"pattern"');
    expect(refused.metadata.field).toBe("tools[0].function.parameters");
  });

  it("calls a function with a JSON object of arguments: a schema of another type is refused, one without a type is an object", async () => {
    for (const parameters of [{ type: "array", items: { type: "integer" } }, { type: "string" }, { anyOf: [{ type: "object" }, { type: "string" }] }]) {
      const refused = await reasonOf(chat({ tools: [{ name: "f", parameters }], toolChoice: "required" }));
      expect(refused.reason).toBe("INVALID_ARGUMENT");
      expect(refused.metadata.field).toBe("tools[0].function.parameters");
      expect(refused.message).toContain("must describe an object");
    }
    // {} once let the grammar produce any JSON value (a bare number came back as the arguments).
    for (const parameters of [{}, { properties: { n: { type: "integer" } }, required: ["n"] }]) {
      const got = await chat({ modelId: "tiny-hermes", tools: [{ name: "f", parameters }], toolChoice: "required", parallelToolCalls: false, maxTokens: 200 });
      expect(got.calls.length).toBeGreaterThan(0);
      for (const call of got.calls) {
        const args: unknown = JSON.parse(call.arguments);
        expect(typeof args === "object" && args !== null && !Array.isArray(args), call.arguments).toBe(true);
      }
    }
  });
});

describe("structured output", () => {
  const PERSON = {
    type: "object",
    properties: { name: { type: "string", maxLength: 16 }, age: { type: "integer" }, tags: { type: "array", items: { enum: ["a", "b"] }, maxItems: 3 } },
    required: ["name", "age", "tags"],
    additionalProperties: false,
  };

  it("json_schema output parses and validates", async () => {
    const got = await chat({ responseFormat: { type: "json_schema", schema: PERSON }, maxTokens: 200 });
    expect(got.end.finishReason).toBe("stop");
    const validate = ajv.compile(PERSON);
    expect(validate(JSON.parse(got.text)), got.text).toBe(true);
  });

  it("json_object output is a JSON object", async () => {
    const got = await chat({ responseFormat: { type: "json_object" }, maxTokens: 200, temperature: 0.8, seed: 3 });
    if (got.end.finishReason === "stop") expect(typeof JSON.parse(got.text)).toBe("object");
    else expect(got.text.startsWith("{")).toBe(true);
  });

  it("an inexpressible keyword is INVALID_ARGUMENT naming it", async () => {
    const refused = await reasonOf(chat({ responseFormat: { type: "json_schema", schema: { type: "integer", minimum: 3 } } }));
    expect(refused).toMatchObject({ reason: "INVALID_ARGUMENT", metadata: { field: "response_format.json_schema.schema" } });
    expect(refused.message).toContain('"minimum"');
  });

  /** Answers to `schema` for `prompts` different prompts (with seeds 1…), every one parsed and checked against it. */
  async function sampledValid(schema: JsonSchema, prompts: number, temperature = 0, validator: Pick<Ajv, "compile"> = ajv): Promise<unknown[]> {
    const validate = validator.compile(schema);
    const values: unknown[] = [];
    for (let i = 1; i <= prompts; i++) {
      const got = await chat({ messages: user(`Describe thing number ${i}`), responseFormat: { type: "json_schema", schema }, maxTokens: 400, temperature, seed: i });
      expect(got.end.finishReason, got.text).toBe("stop");
      const value: unknown = JSON.parse(got.text);
      expect(validate(value), `prompt ${i}: ${got.text}`).toBe(true);
      values.push(value);
    }
    return values;
  }

  it("a type list keeps each type's keywords, and may give an object or an array", async () => {
    // node-llama-cpp drops every keyword of a `type` list and never writes an object or an array for one.
    const schema = {
      type: "object",
      properties: {
        name: { type: ["string", "null"], maxLength: 4 },
        shape: { type: ["object", "array"], properties: { k: { type: "boolean" } }, required: ["k"], additionalProperties: false, items: { type: "integer" }, maxItems: 2 },
        anything: { maxLength: 3 },
      },
      required: ["name", "shape", "anything"],
      additionalProperties: false,
    };
    await sampledValid(schema, 6);
  });

  it("takes zod's integer bounds, and an integer is never written with an exponent or beyond them", async () => {
    // z.number().int() bounds every integer by ±(2^53 − 1); exponents once overflowed to Infinity (1E388364010).
    const SAFE = { type: "integer", minimum: -9007199254740991, maximum: 9007199254740991 };
    const schema = { type: "object", properties: { xs: { type: "array", items: SAFE, minItems: 12, maxItems: 12 }, ys: { type: "array", items: { type: "number" }, minItems: 12, maxItems: 12 } }, required: ["xs", "ys"], additionalProperties: false };
    // Sampled at temperature 1, where every answer once had exponents.
    const values = (await sampledValid(schema, 4, 1)) as Array<{ xs: number[]; ys: number[] }>;
    for (const { xs, ys } of values) {
      expect(xs.every(Number.isSafeInteger), JSON.stringify(xs)).toBe(true);
      expect(ys.every(Number.isFinite), JSON.stringify(ys)).toBe(true);
    }
    const refused = await reasonOf(chat({ responseFormat: { type: "json_schema", schema: { type: "number", minimum: -9007199254740991 } } }));
    expect(refused.message).toContain('"minimum"');
  });

  it("keywords beside anyOf hold in every alternative; contradicting ones are refused", async () => {
    const schema = {
      type: "object",
      properties: { a: { type: "string", maxLength: 3 }, b: { enum: [1, 2] } },
      additionalProperties: false,
      anyOf: [{ required: ["a"] }, { properties: { b: { enum: [1, 2] } }, required: ["b"] }],
    };
    await sampledValid(schema, 4);
    // additionalProperties beside the list forbids the property only an alternative describes: no output could hold.
    const split = { type: "object", properties: { a: { type: "string" } }, additionalProperties: false, anyOf: [{ properties: { b: { type: "string" } }, required: ["b"] }] };
    for (const contradiction of [{ type: "object", anyOf: [{ type: "string" }] }, split]) {
      const refused = await reasonOf(chat({ responseFormat: { type: "json_schema", schema: contradiction } }));
      expect(refused).toMatchObject({ reason: "INVALID_ARGUMENT", metadata: { field: "response_format.json_schema.schema" } });
      expect(refused.message).toContain("/anyOf/0");
    }
  });

  it("an object's required property the schema does not describe is written anyway; a type beside anyOf narrows its alternatives", async () => {
    // node-llama-cpp writes only the properties described: {} came back for these.
    await sampledValid({ type: "object", required: ["a"] }, 3);
    await sampledValid({ type: ["object", "null"], required: ["a"], additionalProperties: false }, 2);
    // The alternative's "object" is one of the types beside the list: taken, not refused as a contradiction.
    await sampledValid({ type: ["object", "null"], anyOf: [{ type: "object", properties: { a: { type: "string", maxLength: 3 } }, required: ["a"] }, { type: "null" }] }, 3);
  });

  it("refuses a schema whose alternatives multiply into more subschemas than a grammar can be built from in time", async () => {
    // "At least one of these properties", nested: a 3 KB schema became 47 MB and stalled the runner for 18 s.
    const level = (depth: number): JsonSchema => ({
      type: "object",
      properties: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`p${i}`, depth > 1 && i === 0 ? level(depth - 1) : { type: "string" }])),
      anyOf: Array.from({ length: 10 }, (_, i) => ({ required: [`p${i}`] })),
    });
    const refused = await reasonOf(chat({ responseFormat: { type: "json_schema", schema: level(5) } }));
    expect(refused).toMatchObject({ reason: "INVALID_ARGUMENT", metadata: { field: "response_format.json_schema.schema" } });
    expect(refused.message).toMatch(/needs more than 2000 subschemas .*simplify it/);
  });

  it("oneOf: alternatives told apart are taken, alternatives one value can match both of are refused", async () => {
    const told = { oneOf: [{ type: "object", properties: { kind: { const: "a" }, n: { type: "integer" } }, required: ["kind", "n"] }, { type: "object", properties: { kind: { const: "b" } }, required: ["kind"] }] };
    await sampledValid(told, 3);
    // {"id": 4} matched both; node-llama-cpp samples oneOf as anyOf.
    const overlapping = { type: "object", properties: { target: { oneOf: [{ type: "object", properties: { id: { type: "integer" } } }, { type: "object", properties: { name: { type: "string" } } }] } } };
    const refused = await reasonOf(chat({ responseFormat: { type: "json_schema", schema: overlapping } }));
    expect(refused.message).toMatch(/at \/properties\/target\/oneOf: alternatives 0 and 1 can both match one value.*use "anyOf"/);
  });

  it("writes neither an enum value of another type than the one beside it, nor more characters than maxLength, nor a day its month lacks", async () => {
    const schema = {
      type: "object",
      properties: { status: { type: "string", enum: ["open", "closed", null] }, a: { type: "string", maxLength: 4 }, b: { type: "string", maxLength: 2 }, day: { type: "string", format: "date" } },
      required: ["status", "a", "b", "day"],
      additionalProperties: false,
    };
    // At temperature 1 these came back: null for the status, "ass" and four bytes that form no character, "2021-09-31".
    for (const value of (await sampledValid(schema, 8, 1)) as Array<{ day: string }>) {
      expect(new Date(`${value.day}T00:00:00Z`).toISOString().slice(0, 10), value.day).toBe(value.day);
    }
  });

  it("takes what schema generators write that says nothing a grammar cannot keep: draft-07 definitions and tuples, zod's records and tuples, a one-part allOf, format on a number", async () => {
    await sampledValid({ type: "array", prefixItems: [{ type: "boolean" }, { type: "integer" }], items: false }, 1, 0, ajv2020);
    const schemas = [
      { definitions: { Name: { type: "string", maxLength: 5 } }, type: "object", properties: { a: { $ref: "#/definitions/Name" } }, required: ["a"] },
      { type: "array", items: [{ type: "boolean" }, { type: "integer" }], additionalItems: false },
      { type: "object", propertyNames: { type: "string" }, additionalProperties: { type: "integer" }, maxProperties: 2 },
      { $defs: { P: { type: "object", properties: { x: { type: "integer" } }, required: ["x"] } }, type: "object", properties: { p: { allOf: [{ $ref: "#/$defs/P" }], description: "pydantic < 2.9" } }, required: ["p"] },
      { type: "object", properties: { n: { type: "integer", format: "int64" }, d: { type: "number", format: "double" } }, required: ["n", "d"] },
      { $defs: { A: { type: "object", properties: { a: { type: "boolean" } } } }, type: "object", anyOf: [{ $ref: "#/$defs/A" }] },
    ];
    for (const schema of schemas) await sampledValid(schema, 1);
  });

  it("refuses what a grammar would write wrong, saying what, where a 500 or invalid JSON came back", async () => {
    const refusals: Array<[object, RegExp]> = [
      [{ const: { a: 1 } }, /at \/const: must be a string, number, boolean or null/],
      [{ type: "object", properties: { "k\u0001": { type: "boolean" } } }, /control character/],
      [{ type: "object", properties: { a: { type: "boolean" }, b: { type: "boolean" } }, maxProperties: 1 }, /maxProperties: is 1, but a grammar writes all 2 properties/],
      [{ type: "string", format: "date-time", maxLength: 5 }, /cannot also bound its length/],
      [{ type: "string", minLength: 5000 }, /llama\.cpp could not build a grammar from this schema/],
    ];
    for (const [schema, message] of refusals) {
      const refused = await reasonOf(chat({ responseFormat: { type: "json_schema", schema: schema as JsonSchema } }));
      expect(refused, JSON.stringify(schema)).toMatchObject({ reason: "INVALID_ARGUMENT", metadata: { field: "response_format.json_schema.schema" } });
      expect(refused.message).toMatch(message);
    }
  });

  it("checks a schema of many definitions sharing others once each (it took seconds, doubling with every level)", async () => {
    // Two models per level, each with a property of either model of the level below.
    const $defs: Record<string, JsonSchema> = { A0: { type: "boolean" }, B0: { type: "integer" } };
    for (let level = 1; level <= 40; level++) {
      for (const name of ["A", "B"]) $defs[`${name}${level}`] = { type: "object", properties: { a: { $ref: `#/$defs/A${level - 1}` }, b: { $ref: `#/$defs/B${level - 1}` } } };
    }
    // References stay references in the grammar: built at once. (Every answer would be a tree of 2^40 leaves: cut by max_tokens.)
    const got = await chat({ responseFormat: { type: "json_schema", schema: { $defs, $ref: "#/$defs/A40" } }, maxTokens: 30 });
    expect(got.end.finishReason).toBe("length");
    expect(got.text.startsWith("{")).toBe(true);
  });

  it("refuses a recursive $ref instead of building an endless grammar; a bounded $ref works", async () => {
    const tree = { $defs: { node: { type: "object", properties: { children: { type: "array", items: { $ref: "#/$defs/node" } } } } }, $ref: "#/$defs/node" };
    const refused = await reasonOf(chat({ responseFormat: { type: "json_schema", schema: tree } }));
    expect(refused).toMatchObject({ reason: "INVALID_ARGUMENT", metadata: { field: "response_format.json_schema.schema" } });
    expect(refused.message).toContain("recursive");
    const bounded = { $defs: { city: { enum: ["Paris", "Tokyo", "Lima"] } }, type: "object", properties: { from: { $ref: "#/$defs/city" }, to: { $ref: "#/$defs/city" } }, required: ["from", "to"] };
    const got = await chat({ responseFormat: { type: "json_schema", schema: bounded }, maxTokens: 200 });
    expect(ajv.validate(bounded, JSON.parse(got.text)), got.text).toBe(true);
  });
});

describe("reasoning", () => {
  const think = (input: Partial<ChatInput>) => answer(fx.engine.chat({ modelId: "tiny-think", messages: user("Why is the sky blue?"), maxTokens: 24, temperature: 0, ...input }));

  it("puts a thinking template's thought segment in reasoning, apart from the answer", async () => {
    const got = await think({});
    expect(got.reasoning.length).toBeGreaterThan(0);
    expect(got.text).not.toContain("<think>");
    expect(got.reasoning).not.toContain("<think>");
  });

  it("enabled: false leaves no thinking", async () => {
    const got = await think({ reasoning: { enabled: false } });
    expect(got.reasoning).toBe("");
    expect(got.end.usage.completionTokens).toBeGreaterThan(0);
  });

  it("a model without thought segments answers as usual", async () => {
    const got = await chat({ reasoning: { effort: "low" }, maxTokens: 6 });
    expect(got.reasoning).toBe("");
    expect(got.end.usage.completionTokens).toBe(6);
  });
});

describe("logprobs, logit bias, embeddings dimensions", () => {
  it("gives one entry per token, each <= 0, with top alternatives sorted", async () => {
    const got = await chat({ logprobs: true, topLogprobs: 5, maxTokens: 10 });
    expect(got.end.finishReason).toBe("length");
    expect(got.logprobs).toHaveLength(got.end.usage.completionTokens);
    expect(got.logprobs.map((l) => l.token).join("")).toBe(got.text);
    for (const entry of got.logprobs) {
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.topLogprobs).toHaveLength(5);
      const tops = entry.topLogprobs.map((t) => t.logprob);
      expect(tops).toEqual([...tops].sort((a, b) => b - a));
      expect(tops.every((l) => l <= 0)).toBe(true);
      expect(tops[0]).toBeGreaterThanOrEqual(entry.logprob);
      // Probabilities of distinct tokens sum to at most 1.
      expect(tops.reduce((sum, l) => sum + Math.exp(l), 0)).toBeLessThanOrEqual(1 + 1e-6);
    }
  });

  it("logprobs on a completion too", async () => {
    const got = await answer(fx.engine.complete({ modelId: "tiny", prompt: "Once upon a time", maxTokens: 6, temperature: 0, logprobs: true, topLogprobs: 2 }));
    expect(got.logprobs).toHaveLength(6);
    expect(got.logprobs.map((l) => l.token).join("")).toBe(got.text);
  });

  it("logit bias -100 keeps the greedy answer's first token out of it", async () => {
    const plain = await chat({ logprobs: true, maxTokens: 6 });
    const banned = plain.logprobs[0]!;
    const ids = await tokenIdsOf(banned.token);
    const biased = await chat({ logprobs: true, maxTokens: 6, logitBias: Object.fromEntries(ids.map((id) => [id, -100])) });
    expect(biased.logprobs.map((l) => l.token)).not.toContain(banned.token);
  });

  it("refuses top_logprobs over 20 and a logit bias out of range", async () => {
    expect(await reasonOf(chat({ logprobs: true, topLogprobs: 21 }))).toMatchObject({ metadata: { field: "top_logprobs" } });
    expect(await reasonOf(chat({ logitBias: { 5: -101 } }))).toMatchObject({ metadata: { field: "logit_bias.5" } });
    const outside = await reasonOf(chat({ logitBias: { 1027: 5 } }));
    expect(outside).toMatchObject({ reason: "INVALID_ARGUMENT", metadata: { field: "logit_bias.1027" } });
    expect(outside.message).toContain("1027 tokens");
  });

  it("dimensions keeps the first values, renormalised to unit length", async () => {
    const full = await fx.engine.embed({ modelId: "tiny-embed", inputs: ["hello world"] });
    const half = await fx.engine.embed({ modelId: "tiny-embed", inputs: ["hello world"], dimensions: full.dimensions / 2 });
    expect(half.dimensions).toBe(full.dimensions / 2);
    const vector = half.embeddings[0]!;
    expect(Math.hypot(...vector)).toBeCloseTo(1, 5);
    const head = full.embeddings[0]!.slice(0, half.dimensions);
    const norm = Math.hypot(...head);
    vector.forEach((x, i) => expect(x).toBeCloseTo(head[i]! / norm, 5));
    const tooMany = await reasonOf(fx.engine.embed({ modelId: "tiny-embed", inputs: ["x"], dimensions: full.dimensions + 1 }));
    expect(tooMany).toMatchObject({ reason: "INVALID_ARGUMENT", metadata: { field: "dimensions" } });
  });
});

/** Ids of the vocabulary pieces that read as `text` (with or without the ▁ space marker). */
async function tokenIdsOf(text: string): Promise<number[]> {
  const { tinyVocab } = await import("../../../testkit/gguf/tiny-gguf.js");
  const bare = text.trimStart();
  const ids = tinyVocab().tokens.flatMap((piece, id) => (piece === bare || piece === `\u2581${bare}` ? [id] : []));
  if (ids.length === 0) throw new Error(`no vocabulary piece ${JSON.stringify(text)}`);
  return ids;
}
