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
    tools: (body.tools ?? []).map((t) => ({
      name: t.function.name,
      description: t.function.description ?? "",
      parametersJson: t.function.parameters ? JSON.stringify(t.function.parameters) : "",
    })),
    ...(body.tool_choice !== undefined
      ? {
          toolChoice:
            typeof body.tool_choice === "string"
              ? { mode: body.tool_choice }
              : { mode: "function", functionName: body.tool_choice.function.name },
        }
      : {}),
    ...(body.parallel_tool_calls != null ? { parallelToolCalls: body.parallel_tool_calls } : {}),
    ...(body.response_format ? { responseFormat: responseFormat(body.response_format) } : {}),
    ...(body.reasoning_effort != null || enableThinking !== undefined
      ? { reasoning: { effort: body.reasoning_effort ?? "", ...(enableThinking !== undefined ? { enabled: enableThinking } : {}) } }
      : {}),
    logprobs: body.logprobs === true,
    ...(body.top_logprobs != null ? { topLogprobs: body.top_logprobs } : {}),
  };
}

function chatMessage(m: ChatMessageBody) {
  return {
    role: m.role === "developer" ? "system" : m.role,
    content: m.content == null ? "" : typeof m.content === "string" ? m.content : m.content.map((p) => p.text).join(""),
    toolCalls: (m.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, argumentsJson: c.function.arguments })),
    toolCallId: m.tool_call_id ?? "",
    reasoning: m.reasoning_content ?? "",
  };
}

function responseFormat(format: NonNullable<ChatCompletionBody["response_format"]>) {
  if (format.type !== "json_schema") return { type: format.type };
  return { type: "json_schema", name: format.json_schema.name, schemaJson: JSON.stringify(format.json_schema.schema ?? {}) };
}
