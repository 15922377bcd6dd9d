/**
 * POST /v1/responses (OpenAI's Responses API, which Codex and the OpenAI Agents SDK speak) with the
 * official openai SDK against a node serving the generated tiny models: text, streamed events the
 * SDK accumulates, a forced function call and its round trip, json_schema output, reasoning items.
 */
import { Ajv } from "ajv";
import OpenAI from "openai";
import type { ResponseInputItem, ResponseStreamEvent } from "openai/resources/responses/responses";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestNode } from "../../../testkit/node/index.js";
import { TINY_CHAT_ID } from "../../../testkit/world/tiny-world.js";
import { startAgentWorld, THINK_ID } from "./helpers/agent-world.js";

const WEATHER = {
  type: "object",
  properties: { city: { type: "string", maxLength: 20 }, unit: { enum: ["celsius", "fahrenheit"] } },
  required: ["city", "unit"],
  additionalProperties: false,
};
const PERSON = {
  type: "object",
  properties: { name: { type: "string", maxLength: 16 }, pets: { type: "array", items: { enum: ["cat", "dog"] }, maxItems: 2 } },
  required: ["name", "pets"],
  additionalProperties: false,
};
const ajv = new Ajv({ strict: false });

let agents: Awaited<ReturnType<typeof startAgentWorld>>;
let node: TestNode;
let openai: OpenAI;

beforeAll(async () => {
  agents = await startAgentWorld();
  ({ node, openai } = agents);
});
afterAll(async () => {
  await agents?.close();
});

const greedy = { model: TINY_CHAT_ID, temperature: 0 };

describe("POST /v1/responses with the openai SDK", () => {
  it("answers text as a Response, the same greedy text as chat completions, incomplete at max_output_tokens", async () => {
    const response = await openai.responses.create({ ...greedy, instructions: "Be brief.", input: "Tell me about Paris", max_output_tokens: 8 });
    expect(response).toMatchObject({ object: "response", status: "incomplete", incomplete_details: { reason: "max_output_tokens" }, model: TINY_CHAT_ID, instructions: "Be brief." });
    expect(response.id).toMatch(/^resp_[0-9a-f]{32}$/);
    expect(response.output).toHaveLength(1);
    expect(response.output[0]).toMatchObject({ type: "message", role: "assistant", status: "incomplete" });
    expect(response.usage).toMatchObject({ output_tokens: 8 });
    expect(response.usage!.input_tokens).toBeGreaterThan(0);
    const chat = await openai.chat.completions.create({
      ...greedy,
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Tell me about Paris" }],
      max_tokens: 8,
    });
    expect(response.output_text).toBe(chat.choices[0]!.message.content);
  });

  it("streams the events the SDK accumulates into the same Response", async () => {
    const request = { ...greedy, input: [{ role: "user" as const, content: [{ type: "input_text" as const, text: "Tell me about Paris" }] }], max_output_tokens: 12 };
    const whole = await openai.responses.create(request);
    const events: ResponseStreamEvent[] = [];
    const stream = openai.responses.stream(request);
    for await (const event of stream) events.push(event);
    const final = await stream.finalResponse();

    expect(events[0]!.type).toBe("response.created");
    expect(events.at(-1)!.type).toBe("response.incomplete");
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const deltas = events.flatMap((e) => (e.type === "response.output_text.delta" ? [e.delta] : []));
    expect(deltas.length).toBeGreaterThan(0);
    expect(deltas.join("")).toBe(whole.output_text);
    expect(final.output_text).toBe(whole.output_text);
    expect(final.usage?.output_tokens).toBe(12);
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(["response.output_item.added", "response.content_part.added", "response.output_text.done", "response.content_part.done", "response.output_item.done"]),
    );
  });

  it("forces a function call whose arguments validate, then answers its output in the next turn", async () => {
    const tools = [{ type: "function" as const, name: "get_weather", description: "Weather for a city", parameters: WEATHER, strict: true }];
    const input: ResponseInputItem[] = [{ role: "user", content: "What is the weather in Paris?" }];
    const called = await openai.responses.create({ ...greedy, input, tools, tool_choice: "required", max_output_tokens: 120 });
    const calls = called.output.filter((item) => item.type === "function_call");
    expect(calls.length).toBeGreaterThan(0);
    const call = calls[0]!;
    expect(call).toMatchObject({ name: "get_weather", status: "completed" });
    expect(call.call_id).toMatch(/^call_/);
    expect(ajv.validate(WEATHER, JSON.parse(call.arguments))).toBe(true);

    // Streamed, the SDK reassembles the same call from its argument pieces.
    const stream = openai.responses.stream({ ...greedy, input, tools, tool_choice: { type: "function", name: "get_weather" }, max_output_tokens: 120 });
    const streamed = (await stream.finalResponse()).output.find((item) => item.type === "function_call");
    expect(streamed?.type === "function_call" && ajv.validate(WEATHER, JSON.parse(streamed.arguments))).toBe(true);

    // The call and its output go back as input items, as an agent loop sends them.
    const bare = await openai.responses.create({ ...greedy, input, tools, tool_choice: "none", max_output_tokens: 1 });
    const answered = await openai.responses.create({
      ...greedy,
      input: [...input, ...(called.output as unknown as ResponseInputItem[]), { type: "function_call_output", call_id: call.call_id, output: '{"forecast":"sunny"}' }],
      tools,
      tool_choice: "none",
      max_output_tokens: 6,
    });
    expect(answered.output.map((item) => item.type)).toEqual(["message"]);
    expect(answered.usage!.input_tokens).toBeGreaterThan(bare.usage!.input_tokens + 10);

    // The SDK's stream() and parse() leave their own parse on the items (parsed_arguments on a
    // call, parsed on a text part); sent back as they came, with the output given as text parts
    // (as the current API allows), they are the same conversation.
    const streamedItems = (await openai.responses.stream({ ...greedy, input, tools, tool_choice: "required", max_output_tokens: 120 }).finalResponse()).output;
    expect(streamedItems.find((item) => item.type === "function_call")).toHaveProperty("parsed_arguments");
    const streamedCall = streamedItems.find((item) => item.type === "function_call")!;
    const partsAnswered = await openai.responses.create({
      ...greedy,
      input: [
        ...input,
        ...(streamedItems as unknown as ResponseInputItem[]),
        { type: "function_call_output", call_id: streamedCall.type === "function_call" ? streamedCall.call_id : "", output: [{ type: "input_text", text: '{"forecast":"sunny"}' }] },
      ],
      tools,
      tool_choice: "none",
      max_output_tokens: 6,
    });
    expect(partsAnswered.status).toBe("incomplete");
    const text = await openai.responses.stream({ ...greedy, input: "Tell me about Paris", max_output_tokens: 4 }).finalResponse();
    expect(text.output[0]).toMatchObject({ type: "message", content: [{ type: "output_text", parsed: null }] });
    const followUp = await openai.responses.create({ ...greedy, input: [{ role: "user", content: "Tell me about Paris" }, ...(text.output as unknown as ResponseInputItem[]), { role: "user", content: "More" }], max_output_tokens: 2 });
    expect(followUp.output_text.length).toBeGreaterThan(0);
  });

  it("marks a function call cut off by max_output_tokens incomplete, streamed and not", async () => {
    const tools = [{ type: "function" as const, name: "note", description: "Keep a note", parameters: { type: "object", properties: { text: { type: "string" } }, required: ["text"] }, strict: true }];
    const request = { ...greedy, input: "Write a note", tools, tool_choice: "required" as const, max_output_tokens: 12 };
    const whole = await openai.responses.create(request);
    expect(whole.status).toBe("incomplete");
    expect(whole.output.at(-1)).toMatchObject({ type: "function_call", status: "incomplete" });
    const events: ResponseStreamEvent[] = [];
    const stream = openai.responses.stream(request);
    for await (const event of stream) events.push(event);
    expect((await stream.finalResponse()).output.at(-1)).toMatchObject({ type: "function_call", status: "incomplete" });
    expect(events.find((e) => e.type === "response.function_call_arguments.done")).toMatchObject({ name: "note" });
  });

  it("json_schema output parses and validates", async () => {
    const response = await openai.responses.create({
      ...greedy,
      input: "Describe a person",
      text: { format: { type: "json_schema", name: "person", schema: PERSON, strict: true } },
      max_output_tokens: 200,
    });
    expect(response.status).toBe("completed");
    expect(ajv.validate(PERSON, JSON.parse(response.output_text))).toBe(true);
  });

  it("puts a thinking model's thought in a reasoning item, streamed and not; effort none turns it off", async () => {
    const request = { model: THINK_ID, temperature: 0, input: "Why is the sky blue?", max_output_tokens: 24 };
    const whole = await openai.responses.create(request);
    const reasoning = whole.output.find((item) => item.type === "reasoning");
    const thought = reasoning?.content?.map((c) => c.text).join("") ?? "";
    expect(thought.length).toBeGreaterThan(0);
    expect(`${thought}${whole.output_text}`).not.toContain("<think>");

    const stream = openai.responses.stream(request);
    let streamedThought = "";
    for await (const event of stream) if (event.type === "response.reasoning_text.delta") streamedThought += event.delta;
    expect(streamedThought).toBe(thought);
    expect((await stream.finalResponse()).output_text).toBe(whole.output_text);

    // The whole output, reasoning item included, goes back as input for the next turn.
    const next = await openai.responses.create({
      ...request,
      input: [{ role: "user", content: request.input }, ...(whole.output as unknown as ResponseInputItem[]), { role: "user", content: "And at night?" }],
      max_output_tokens: 4,
    });
    expect(next.usage!.input_tokens).toBeGreaterThan(whole.usage!.input_tokens);

    const off = await openai.responses.create({ ...request, reasoning: { effort: "none" } });
    expect(off.output.map((item) => item.type)).toEqual(["message"]);
  });

  it("refuses what it cannot do with a 400 naming the field", async () => {
    const refused = async (body: Record<string, unknown>) => {
      const res = await fetch(`${node.httpUrl}/v1/responses`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...greedy, ...body }) });
      expect(res.status).toBe(400);
      return ((await res.json()) as { error: { param: string | null; message: string; code: string | null } }).error;
    };
    expect((await refused({ input: "hi", previous_response_id: "resp_1" })).param).toBe("previous_response_id");
    expect((await refused({ input: "hi", tools: [{ type: "web_search" }] })).param).toBe("tools[0].type");
    // A Responses tool is flat: the error names its field as sent, not the chat tool's tools[0].function.parameters.
    const notObject = await refused({ input: "hi", tools: [{ type: "function", name: "f", parameters: { type: "string" } }] });
    expect(notObject.param).toBe("tools[0].parameters");
    expect(notObject.message).toMatch(/^tools\[0\]\.parameters must describe an object/);
    const image = await refused({ input: [{ role: "user", content: [{ type: "input_image", image_url: "data:image/png;base64,AA" }] }] });
    expect(image).toMatchObject({ param: "input[0].content[0].type", code: "unsupported_content_part" });
    expect(image.message).toContain("text only");
    const outputImage = await refused({
      input: [
        { type: "function_call", call_id: "c1", name: "f", arguments: "{}" },
        { type: "function_call_output", call_id: "c1", output: [{ type: "input_image", image_url: "data:image/png;base64,AA" }] },
      ],
    });
    expect(outputImage).toMatchObject({ param: "input[1].output[0].type", code: "unsupported_content_part" });
    expect((await refused({ input: [{ type: "function_call_output", output: "x" }] })).param).toBe("input[0].call_id");
  });

  it("names the input item a refused message came from, never the chat message it became", async () => {
    const refused = async (body: Record<string, unknown>) => {
      const res = await fetch(`${node.httpUrl}/v1/responses`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...greedy, ...body }) });
      expect(res.status).toBe(400);
      return ((await res.json()) as { error: { param: string | null; message: string } }).error;
    };
    // Instructions become message 0 and the two function calls one assistant message: the bad
    // arguments are the third input item's.
    const calls = await refused({
      instructions: "be brief",
      input: [
        { role: "user", content: "weather?" },
        { type: "function_call", call_id: "c1", name: "get_weather", arguments: '{"city":"Paris"}' },
        { type: "function_call", call_id: "c2", name: "get_weather", arguments: "{not json" },
        { type: "function_call_output", call_id: "c1", output: "sunny" },
        { type: "function_call_output", call_id: "c2", output: "rain" },
      ],
    });
    expect(calls).toMatchObject({ param: "input[2].arguments", message: "input[2].arguments is not valid JSON" });
    const badName = await refused({
      input: [
        { role: "user", content: "weather?" },
        { type: "function_call", call_id: "c1", name: "get weather!", arguments: "{}" },
        { type: "function_call_output", call_id: "c1", output: "sunny" },
      ],
    });
    expect(badName).toMatchObject({ param: "input[1].name" });
    // A call without its output, and an output without its call, are explained in this API's items.
    const unanswered = await refused({ input: [{ role: "user", content: "weather?" }, { type: "function_call", call_id: "c1", name: "get_weather", arguments: "{}" }] });
    expect(unanswered).toMatchObject({ param: "input[1]" });
    expect(unanswered.message).toBe('input[1] (call_id "c1") has no function_call_output item with its result; send {"type":"function_call_output","call_id":"c1","output":...} after it');
    const orphan = await refused({ input: [{ role: "user", content: "weather?" }, { type: "function_call_output", call_id: "c9", output: "sunny" }] });
    expect(orphan).toMatchObject({ param: "input[1].call_id" });
    expect(orphan.message).toMatch(/^input\[1\]\.call_id "c9" answers no function_call item before it/);
    const long = await refused({ input: "word ".repeat(3000) });
    expect(long.param).toBe("input");
    expect(long.message).toMatch(/^input: the prompt has more than \d+ tokens/);
  });
});
