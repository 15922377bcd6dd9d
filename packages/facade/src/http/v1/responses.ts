import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { LlmlbError, invalidField } from "@llmlb/runtime";
import type { ChatMessageSchema, ChatRequestSchema } from "@llmlb/runtime/gen/llmlb/node/v1/inference_pb";
import type { NodeClients } from "../../clients.js";
import { httpErrorOf } from "../error-mapping.js";
import { abortWhenClientLeaves, accumulate, emptyResult, openStreamAfterFirst, type ChoiceResult, type Delta } from "./completion-stream.js";
import { outputFormat, reasoningFor, toolChoice, toolDefinition } from "./chat-request.js";
import { streamWithFieldsAsSent } from "./field-as-sent.js";
import { samplingFields } from "./sampling.js";
import { responsesBody, type ResponsesBody, type ResponsesInputItem } from "./responses-schema.js";

type ChatMessageInit = MessageInitShape<typeof ChatMessageSchema>;
type ChatRequestInit = MessageInitShape<typeof ChatRequestSchema>;

const newId = (prefix: string) => `${prefix}_${randomBytes(16).toString("hex")}`;

/** POST /v1/responses: OpenAI's Responses API (stateless) over the same Chat call as /v1/chat/completions. */
export function registerResponsesRoute(app: FastifyInstance, clients: NodeClients): void {
  app.post<{ Body: ResponsesBody }>("/v1/responses", { schema: { body: responsesBody } }, (request, reply) => {
    const { chat, fieldAsSent } = chatRequestOf(request.body);
    return answerResponse(request, reply, (signal) => streamWithFieldsAsSent(clients.inference.chat(chat, { signal }), fieldAsSent));
  });
}

/**
 * A Responses body as a ChatRequest: instructions first, then the input items as messages. And
 * for an error's field, the Responses field it came from (`messages[2].tool_calls[0].arguments`
 * was sent as `input[3].arguments`, `tools[0].function.name` as `tools[0].name`).
 */
export function chatRequestOf(body: ResponsesBody): { chat: ChatRequestInit; fieldAsSent: (field: string) => string | undefined } {
  const format = body.text?.format;
  const effort = body.reasoning?.effort;
  const input = inputMessages(body.input);
  const origins: MessageOrigin[] = [...(body.instructions ? [{ from: "instructions" as const, calls: [] }] : []), ...input.origins];
  const chat: ChatRequestInit = {
    ...samplingFields({
      model: body.model,
      max_tokens: body.max_output_tokens,
      temperature: body.temperature,
      top_p: body.top_p,
      ...(body.adapters ? { adapters: body.adapters } : {}),
      ...(body.wait_for_model !== undefined ? { wait_for_model: body.wait_for_model } : {}),
      ...(body.keep_alive !== undefined ? { keep_alive: body.keep_alive } : {}),
    }),
    messages: [...(body.instructions ? [{ role: "system", content: body.instructions }] : []), ...input.messages],
    tools: (body.tools ?? []).map(toolDefinition),
    ...(body.tool_choice !== undefined ? { toolChoice: toolChoice(body.tool_choice) } : {}),
    ...(body.parallel_tool_calls != null ? { parallelToolCalls: body.parallel_tool_calls } : {}),
    ...(format && format.type !== "text" ? { responseFormat: outputFormat(format) } : {}),
    ...reasoningFor(effort),
  };
  return { chat, fieldAsSent: (field) => toolFieldOf(field) ?? inputFieldOf(field, origins) };
}

/** A Responses tool is flat: the chat tool's `tools[0].function.parameters` was sent as `tools[0].parameters`. */
function toolFieldOf(field: string): string | undefined {
  const match = /^(tools\[\d+\])\.function(\..*)?$/.exec(field);
  return match ? `${match[1]}${match[2] ?? ""}` : undefined;
}

/** Where a chat message came from: the instructions, the input string, or the input item that started it (and its function_call items). */
interface MessageOrigin {
  from: "instructions" | "input" | number;
  /** The input item of each of the message's tool calls. */
  calls: number[];
}

/** The names a message's fields have in a Responses input item. */
const ITEM_FIELDS: Record<string, string> = { tool_call_id: "call_id", id: "call_id" };

function inputFieldOf(field: string, origins: readonly MessageOrigin[]): string | undefined {
  if (field === "messages") return "input";
  const match = /^messages\[(\d+)\](?:\.tool_calls\[(\d+)\])?(?:\.([a-z_]+))?(.*)$/.exec(field);
  const origin = match ? origins[Number(match[1])] : undefined;
  if (!match || !origin) return undefined;
  const [, , call, name, rest] = match;
  // A Responses function_call is flat: chat's `tool_calls[0].function.arguments` was sent as `arguments`.
  const named = name === "function" ? rest : name ? `.${ITEM_FIELDS[name] ?? name}${rest}` : rest;
  if (call !== undefined) {
    const item = origin.calls[Number(call)];
    return item === undefined ? undefined : `input[${item}]${named}`;
  }
  if (origin.from === "instructions") return "instructions";
  if (origin.from === "input") return "input";
  return `input[${origin.from}]${named}`;
}

/** A chat message being built from input items. */
interface Turn {
  role: string;
  content: string;
  toolCalls?: Array<{ id: string; name: string; argumentsJson: string }>;
  toolCallId?: string;
  reasoning?: string;
}

/**
 * Input items as chat messages: a function_call joins the assistant turn before it (or starts
 * one), its output is a tool message, and reasoning sent back goes with the next assistant turn.
 */
function inputMessages(input: ResponsesBody["input"]): { messages: ChatMessageInit[]; origins: MessageOrigin[] } {
  if (typeof input === "string") return { messages: [{ role: "user", content: input }], origins: [{ from: "input", calls: [] }] };
  const messages: Turn[] = [];
  const origins: MessageOrigin[] = [];
  const push = (turn: Turn, i: number) => {
    messages.push(turn);
    origins.push({ from: i, calls: [] });
  };
  let reasoning = "";
  const assistantTurn = (i: number): Turn => {
    const last = messages.at(-1);
    if (last?.role === "assistant") return last;
    const turn: Turn = { role: "assistant", content: "", toolCalls: [], ...(reasoning ? { reasoning } : {}) };
    reasoning = "";
    push(turn, i);
    return turn;
  };
  input.forEach((item, i) => {
    switch (item.type ?? "message") {
      case "message": {
        if (!item.role) throw missing(i, "role");
        const content = messageText(item, i);
        if (item.role === "assistant") {
          const turn = assistantTurn(i);
          turn.content += content;
        } else {
          push({ role: item.role === "developer" ? "system" : item.role, content }, i);
        }
        break;
      }
      case "function_call":
        if (!item.call_id) throw missing(i, "call_id");
        if (!item.name) throw missing(i, "name");
        assistantTurn(i).toolCalls!.push({ id: item.call_id, name: item.name, argumentsJson: item.arguments ?? "{}" });
        origins.at(-1)!.calls.push(i);
        break;
      case "function_call_output":
        if (!item.call_id) throw missing(i, "call_id");
        push({ role: "tool", content: typeof item.output === "string" ? item.output : (item.output ?? []).map((part) => part.text ?? "").join(""), toolCallId: item.call_id }, i);
        break;
      case "reasoning":
        // This node's reasoning items carry the thought as reasoning_text content; OpenAI's, a summary.
        reasoning += typeof item.content === "string" ? item.content : (item.content ?? []).map((part) => part.text ?? "").join("");
        reasoning += (item.summary ?? []).map((s) => s.text ?? "").join("");
        break;
    }
  });
  checkCallsAnswered(input);
  return { messages, origins };
}

/**
 * Each function_call item needs its function_call_output after it, and each output a call before
 * it, as OpenAI's Responses API requires. The engine checks the same pairing on chat messages;
 * checked here first, the error names the items and the fix in this API's words.
 */
function checkCallsAnswered(input: readonly ResponsesInputItem[]): void {
  const calls = new Map<string, number>();
  const answered = new Set<string>();
  input.forEach((item, i) => {
    const callId = item.call_id!;
    if (item.type === "function_call") calls.set(callId, i);
    if (item.type !== "function_call_output") return;
    if (!calls.has(callId)) {
      throw invalidField(`input[${i}].call_id`, `"${callId}" answers no function_call item before it; send the model's function_call item with call_id "${callId}" ahead of its output`);
    }
    answered.add(callId);
  });
  for (const [callId, i] of calls) {
    if (answered.has(callId)) continue;
    throw invalidField(`input[${i}]`, `(call_id "${callId}") has no function_call_output item with its result; send {"type":"function_call_output","call_id":"${callId}","output":...} after it`);
  }
}

function messageText(item: ResponsesInputItem, i: number): string {
  if (typeof item.content === "string") return item.content;
  if (!item.content) throw missing(i, "content");
  return item.content.map((part) => part.text ?? part.refusal ?? "").join("");
}

const missing = (i: number, field: string) => new LlmlbError("INVALID_ARGUMENT", `input[${i}] needs "${field}"`, { field: `input[${i}].${field}` });

interface OutputItem {
  type: "reasoning" | "message" | "function_call";
  id: string;
  [key: string]: unknown;
}

/** The Response object: the request's settings echoed, the output items, usage and status. */
class ResponseState {
  readonly id = newId("resp");
  readonly createdAt = Math.floor(Date.now() / 1000);
  readonly output: OutputItem[] = [];
  private usage: Delta["usage"];
  private finishReason = "";

  constructor(private readonly body: ResponsesBody) {}

  record(part: Delta): void {
    if (part.usage) this.usage = part.usage;
    if (part.finishReason) this.finishReason = part.finishReason;
  }

  /** The output of a whole answer, in the order the model produced it: reasoning, text, calls. */
  setOutput(result: ChoiceResult): void {
    if (result.reasoning) this.output.push(reasoningItem(newId("rs"), result.reasoning));
    if (result.text || result.toolCalls.length === 0) this.output.push(messageItem(newId("msg"), result.text, this.status));
    result.toolCalls.forEach((call, k) => this.output.push(functionCallItem(newId("fc"), call.id, call.name, call.arguments, this.callStatus(k === result.toolCalls.length - 1))));
  }

  /** A call is complete unless the answer was cut off while it was being written (the last one). */
  callStatus(last: boolean): "completed" | "incomplete" {
    return last ? this.status : "completed";
  }

  get status(): "completed" | "incomplete" {
    return this.finishReason === "length" ? "incomplete" : "completed";
  }

  snapshot(status: "in_progress" | "completed" | "incomplete") {
    const body = this.body;
    return {
      id: this.id,
      object: "response",
      created_at: this.createdAt,
      status,
      error: null,
      incomplete_details: status === "incomplete" ? { reason: "max_output_tokens" } : null,
      instructions: body.instructions ?? null,
      max_output_tokens: body.max_output_tokens ?? null,
      model: body.model,
      output: status === "in_progress" ? [] : this.output,
      parallel_tool_calls: body.parallel_tool_calls ?? true,
      previous_response_id: null,
      reasoning: { effort: body.reasoning?.effort ?? null, summary: body.reasoning?.summary ?? null },
      store: false,
      temperature: body.temperature ?? null,
      text: { format: body.text?.format ?? { type: "text" } },
      tool_choice: body.tool_choice ?? "auto",
      tools: (body.tools ?? []).map((t) => ({ type: "function", name: t.name, description: t.description ?? null, parameters: t.parameters ?? null, strict: t.strict ?? true })),
      top_p: body.top_p ?? null,
      truncation: "disabled",
      usage:
        status === "in_progress"
          ? null
          : {
              input_tokens: this.usage?.promptTokens ?? 0,
              input_tokens_details: { cached_tokens: this.usage?.cachedPromptTokens ?? 0 },
              output_tokens: this.usage?.completionTokens ?? 0,
              output_tokens_details: { reasoning_tokens: 0 },
              total_tokens: this.usage?.totalTokens ?? 0,
            },
      user: null,
      metadata: body.metadata ?? {},
    };
  }
}

const reasoningItem = (id: string, text: string): OutputItem => ({ type: "reasoning", id, summary: [], content: [{ type: "reasoning_text", text }] });
const outputText = (text: string) => ({ type: "output_text", text, annotations: [], logprobs: [] });
const messageItem = (id: string, text: string, status: string): OutputItem => ({ type: "message", id, status, role: "assistant", content: [outputText(text)] });
const functionCallItem = (id: string, callId: string, name: string, args: string, status: string): OutputItem => ({ type: "function_call", id, call_id: callId, name, arguments: args, status });

/**
 * Runs the Chat call and answers as a Response: one JSON object, or the typed SSE events OpenAI's
 * SDKs accumulate (response.created … response.completed). The call is aborted when the client
 * goes away.
 */
async function answerResponse(request: FastifyRequest<{ Body: ResponsesBody }>, reply: FastifyReply, run: (signal: AbortSignal) => AsyncIterable<Delta>): Promise<void> {
  const state = new ResponseState(request.body);
  const controller = new AbortController();
  if (request.body.stream !== true) {
    const stopWatching = abortWhenClientLeaves(reply, controller);
    const result = emptyResult(0);
    try {
      for await (const part of run(controller.signal)) {
        accumulate(result, part);
        state.record(part);
      }
    } finally {
      stopWatching();
    }
    state.setOutput(result);
    await reply.send(state.snapshot(state.status));
    return;
  }

  const iterator = run(controller.signal)[Symbol.asyncIterator]();
  const opened = await openStreamAfterFirst(reply, controller, [iterator]);
  if (!opened) return;
  const { sse } = opened;
  let step = opened.firsts[0]!;
  const events = new ResponseEvents(state, (event) => sse.send(event, event.type as string));
  try {
    await events.start();
    for (; !step.done; step = await iterator.next()) await events.part(step.value);
    await events.finish();
  } catch (err) {
    if (!sse.signal.aborted) {
      const { code, message, param } = httpErrorOf(err).body;
      await sse.send({ type: "error", code, message, param, sequence_number: events.next() }, "error");
    }
  } finally {
    controller.abort();
    sse.end();
  }
}

/** The streamed events of one Response: each output item opened, filled by deltas, and closed. */
class ResponseEvents {
  private sequence = 0;
  private open: { item: OutputItem; index: number; text: string } | undefined;
  private calls = new Map<number, { item: OutputItem; index: number; args: string }>();

  constructor(
    private readonly state: ResponseState,
    private readonly emit: (event: Record<string, unknown>) => Promise<void>,
  ) {}

  next(): number {
    return this.sequence++;
  }

  private send(type: string, fields: Record<string, unknown>): Promise<void> {
    return this.emit({ type, sequence_number: this.next(), ...fields });
  }

  async start(): Promise<void> {
    await this.send("response.created", { response: this.state.snapshot("in_progress") });
    await this.send("response.in_progress", { response: this.state.snapshot("in_progress") });
  }

  async part(part: Delta): Promise<void> {
    this.state.record(part);
    if (part.reasoning) await this.text("reasoning", part.reasoning);
    if (part.delta) await this.text("message", part.delta);
    for (const piece of part.toolCalls ?? []) {
      let call = this.calls.get(piece.index);
      if (!call) {
        await this.closeOpen();
        const item = functionCallItem(newId("fc"), piece.id, piece.name, "", "in_progress");
        call = { item, index: this.state.output.push(item) - 1, args: "" };
        this.calls.set(piece.index, call);
        await this.send("response.output_item.added", { output_index: call.index, item: { ...item } });
      }
      if (piece.argumentsJson) {
        call.args += piece.argumentsJson;
        await this.send("response.function_call_arguments.delta", { item_id: call.item.id, output_index: call.index, delta: piece.argumentsJson });
      }
    }
  }

  async finish(): Promise<void> {
    await this.closeOpen();
    // An answer with neither text nor calls still has its (empty) message, as a non-streamed one does.
    if (this.state.output.length === 0 || this.state.output.every((item) => item.type === "reasoning")) {
      await this.text("message", "");
      await this.closeOpen();
    }
    const calls = [...this.calls.values()];
    for (const [k, call] of calls.entries()) {
      await this.send("response.function_call_arguments.done", { item_id: call.item.id, output_index: call.index, name: call.item.name, arguments: call.args });
      const done = { ...call.item, arguments: call.args, status: this.state.callStatus(k === calls.length - 1) };
      this.state.output[call.index] = done;
      await this.send("response.output_item.done", { output_index: call.index, item: done });
    }
    const status = this.state.status;
    await this.send(status === "completed" ? "response.completed" : "response.incomplete", { response: this.state.snapshot(status) });
  }

  /** Text into the open item of this kind, opening it (and closing another) first. */
  private async text(kind: "reasoning" | "message", delta: string): Promise<void> {
    if (this.open?.item.type !== kind) {
      await this.closeOpen();
      const item = kind === "reasoning" ? { type: "reasoning" as const, id: newId("rs"), summary: [], content: [] } : { type: "message" as const, id: newId("msg"), status: "in_progress", role: "assistant", content: [] };
      this.open = { item, index: this.state.output.push(item) - 1, text: "" };
      await this.send("response.output_item.added", { output_index: this.open.index, item: { ...item } });
      const part = kind === "reasoning" ? { type: "reasoning_text", text: "" } : outputText("");
      await this.send("response.content_part.added", { item_id: item.id, output_index: this.open.index, content_index: 0, part });
    }
    const open = this.open!;
    open.text += delta;
    if (!delta) return;
    const type = kind === "reasoning" ? "response.reasoning_text.delta" : "response.output_text.delta";
    await this.send(type, { item_id: open.item.id, output_index: open.index, content_index: 0, delta, ...(kind === "message" ? { logprobs: [] } : {}) });
  }

  private async closeOpen(): Promise<void> {
    const open = this.open;
    if (!open) return;
    this.open = undefined;
    const { item, index, text } = open;
    const fields = { item_id: item.id, output_index: index, content_index: 0 };
    let done: OutputItem;
    if (item.type === "reasoning") {
      await this.send("response.reasoning_text.done", { ...fields, text });
      await this.send("response.content_part.done", { ...fields, part: { type: "reasoning_text", text } });
      done = reasoningItem(item.id, text);
    } else {
      await this.send("response.output_text.done", { ...fields, text, logprobs: [] });
      await this.send("response.content_part.done", { ...fields, part: outputText(text) });
      done = messageItem(item.id, text, this.state.status);
    }
    this.state.output[index] = done;
    await this.send("response.output_item.done", { output_index: index, item: done });
  }
}
