import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelResponse, ChatModelSegment } from "node-llama-cpp";
import { invalidField, parseJsonField } from "../errors/index.js";
import type { ChatMessage } from "./types.js";

/**
 * The request's messages as node-llama-cpp chat history (no default system prompt), ending with
 * the empty model turn to generate. An assistant message's tool calls carry the results of the
 * tool messages that answer them, so the chat wrapper renders calls and results in its own syntax.
 */
export function chatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const results = toolResults(messages);
  const history: ChatHistoryItem[] = [];
  messages.forEach((message, i) => {
    switch (message.role) {
      case "system":
      case "user":
        history.push({ type: message.role, text: message.content });
        break;
      case "assistant":
        history.push(modelTurn(message, i, results));
        break;
      case "tool":
        break;
    }
  });
  history.push({ type: "model", response: [] });
  return history;
}

function modelTurn(message: ChatMessage, index: number, results: Map<string, string>): ChatModelResponse {
  const response: ChatModelResponse["response"] = [];
  if (message.reasoning) {
    const thought: ChatModelSegment = { type: "segment", segmentType: "thought", text: message.reasoning, ended: true };
    response.push(thought);
  }
  if (message.content) response.push(message.content);
  message.toolCalls?.forEach((call, j) => {
    const field = `messages[${index}].tool_calls[${j}]`;
    const result = results.get(call.id);
    if (result === undefined) {
      throw invalidField(field, `(id "${call.id}") has no tool message with its result; send {"role":"tool","tool_call_id":"${call.id}","content":...} after it`);
    }
    const item: ChatModelFunctionCall = { type: "functionCall", name: call.name, params: parseArguments(call.arguments, `${field}.function.arguments`), result, startsNewChunk: j === 0 };
    response.push(item);
  });
  return { type: "model", response };
}

/** Tool results by call id; a tool message must answer a call made by an earlier assistant message. */
function toolResults(messages: readonly ChatMessage[]): Map<string, string> {
  const calls = new Set<string>();
  const results = new Map<string, string>();
  messages.forEach((message, i) => {
    if (message.role === "assistant") message.toolCalls?.forEach((call) => calls.add(call.id));
    if (message.role !== "tool") return;
    const id = message.toolCallId ?? "";
    if (!id) throw invalidField(`messages[${i}].tool_call_id`, "is required on a tool message");
    if (!calls.has(id)) throw invalidField(`messages[${i}].tool_call_id`, `"${id}" answers no tool call of an earlier assistant message`);
    results.set(id, message.content);
  });
  return results;
}

/** A tool call's arguments: empty text is no arguments. */
function parseArguments(text: string, field: string): unknown {
  return text.trim() === "" ? undefined : parseJsonField(text, field);
}
