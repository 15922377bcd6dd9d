import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ChatRequestSchema } from "@llmlb/runtime/gen/llmlb/node/v1/inference_pb";
import { samplingFields } from "./sampling.js";
import type { ChatCompletionBody, ChatMessageBody } from "./schemas.js";

type ChatRequestInit = MessageInitShape<typeof ChatRequestSchema>;

/** A /v1/chat/completions body as a ChatRequest (without n, which is one request per choice). */
export function chatRequest(body: ChatCompletionBody): ChatRequestInit {
  const enableThinking = body.chat_template_kwargs?.enable_thinking;
  return {
    ...samplingFields(body),
    messages: body.messages.map(chatMessage),
    tools: (body.tools ?? []).map((t) => toolDefinition(t.function)),
    ...(body.tool_choice != null ? { toolChoice: toolChoice(typeof body.tool_choice === "string" ? body.tool_choice : body.tool_choice.function) } : {}),
    ...(body.parallel_tool_calls != null ? { parallelToolCalls: body.parallel_tool_calls } : {}),
    ...(body.response_format ? { responseFormat: responseFormat(body.response_format) } : {}),
    ...reasoningFor(body.reasoning_effort, enableThinking),
    logprobs: body.logprobs === true,
    ...(body.top_logprobs != null ? { topLogprobs: body.top_logprobs } : {}),
  };
}

/**
 * A reasoning effort (chat's reasoning_effort, Responses' reasoning.effort) and chat's
 * enable_thinking as ChatRequest's reasoning: "none" turns thinking off, "minimal" is the least
 * this node's effort levels offer (low).
 */
export function reasoningFor(effort: string | null | undefined, enabled?: boolean) {
  if (effort == null && enabled === undefined) return {};
  const off = effort === "none";
  return {
    reasoning: {
      effort: effort == null || off ? "" : effort === "minimal" ? "low" : effort,
      ...(enabled !== undefined ? { enabled } : off ? { enabled: false } : {}),
    },
  };
}

function chatMessage(m: ChatMessageBody) {
  const content = m.content == null ? "" : typeof m.content === "string" ? m.content : m.content.map((p) => (p.type === "text" ? p.text : p.refusal)).join("");
  return {
    role: m.role === "developer" ? "system" : m.role,
    content: content || (m.refusal ?? ""),
    toolCalls: (m.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, argumentsJson: c.function.arguments })),
    toolCallId: m.tool_call_id ?? "",
    reasoning: m.reasoning_content ?? "",
  };
}

function responseFormat(format: NonNullable<ChatCompletionBody["response_format"]>) {
  return outputFormat(format.type === "json_schema" ? { type: format.type, ...format.json_schema } : format);
}

/** A function tool as ChatRequest takes it (chat nests these fields under `function`, /v1/responses does not). */
export const toolDefinition = (fn: { name: string; description?: string | null; parameters?: Record<string, unknown> | null }) => ({
  name: fn.name,
  description: fn.description ?? "",
  parametersJson: fn.parameters ? JSON.stringify(fn.parameters) : "",
});

/** `tool_choice`: a mode, or the function to call. */
export const toolChoice = (choice: string | { name: string }) => (typeof choice === "string" ? { mode: choice } : { mode: "function", functionName: choice.name });

/** An output format (text, json_object, or json_schema with its name and schema) as ChatRequest's response format. */
export function outputFormat(format: { type: string; name?: string; schema?: Record<string, unknown> }) {
  if (format.type !== "json_schema") return { type: format.type };
  return { type: "json_schema", name: format.name ?? "", schemaJson: JSON.stringify(format.schema ?? {}) };
}
