import { randomBytes } from "node:crypto";
import type {
  ChatModelFunctions,
  ChatWrapper,
  ChatWrapperGenerateContextStateOptions,
  ChatWrapperGeneratedContextState,
  LlamaChatResponseFunctionCallParamsChunk,
} from "node-llama-cpp";
import { toolsUnsupported } from "../errors/index.js";
import { llamaCpp } from "./llama-cpp.js";
import { grammarSchema } from "./json-schema.js";
import type { ToolCallDelta, ToolChoice, ToolDefinition } from "./types.js";

/** The functions the model may call for this request, or none ("none", no tools). */
export function chatFunctions(tools: readonly ToolDefinition[] | undefined, choice: ToolChoice | undefined): ChatModelFunctions | undefined {
  if (!tools || tools.length === 0 || choice === "none") return undefined;
  const offered = typeof choice === "object" ? tools.filter((tool) => tool.name === choice.function) : tools;
  return Object.fromEntries(
    offered.map((tool) => {
      const index = tools.indexOf(tool);
      return [
        tool.name,
        {
          ...(tool.description ? { description: tool.description } : {}),
          // A schema without "type" describes an object (checkToolParameters): {} would let any JSON value through.
          ...(tool.parameters ? { params: grammarSchema({ type: "object", ...tool.parameters }, `tools[${index}].function.parameters`) } : {}),
        },
      ];
    }),
  );
}

/** "required" and a named function make the answer a call. */
export const forcesCall = (choice: ToolChoice | undefined): boolean => choice === "required" || typeof choice === "object";

/**
 * The chat wrapper with the model's answer opened as a function call in the wrapper's own syntax:
 * node-llama-cpp then samples the name and the arguments from its grammars, so a call always comes.
 */
export function forcedCallWrapper(wrapper: ChatWrapper): ChatWrapper {
  const forced = Object.create(wrapper) as ChatWrapper;
  forced.generateContextState = (options: ChatWrapperGenerateContextStateOptions) => {
    const state = wrapper.generateContextState(options);
    return {
      ...state,
      contextText: llamaCpp().LlamaText([state.contextText, wrapper.settings.functions.call.prefix]),
      functionCall: { initiallyEngaged: true, disengageInitiallyEngaged: [] },
    } as ChatWrapperGeneratedContextState;
  };
  return forced;
}

/**
 * TOOLS_UNSUPPORTED when the model's own Jinja chat template has no tool-call syntax (node-llama-cpp
 * found none in it). node-llama-cpp's built-in chat wrappers each define one, so only models it
 * renders through their raw template can lack it.
 */
export function requireToolSupport(wrapper: ChatWrapper, modelId: string): void {
  if (wrapper instanceof llamaCpp().JinjaTemplateChatWrapper && !wrapper.usingJinjaFunctionCallTemplate) throw toolsUnsupported(modelId);
}

/** A new OpenAI-style call id. */
export const newCallId = (): string => `call_${randomBytes(12).toString("base64url")}`;

/**
 * Turns node-llama-cpp's function-call callbacks into tool-call pieces: the first piece of each
 * call has its id and name, the next ones the arguments' JSON text as sampled. Whitespace after
 * the JSON (the grammar's terminator) is held back and dropped.
 */
export class ToolCallPieces {
  readonly ids: string[] = [];
  private heldWhitespace = new Map<number, string>();
  private completed = 0;

  constructor(private readonly emit: (piece: ToolCallDelta) => void) {}

  paramsChunk(chunk: LlamaChatResponseFunctionCallParamsChunk): void {
    this.open(chunk.callIndex, chunk.functionName);
    const text = (this.heldWhitespace.get(chunk.callIndex) ?? "") + chunk.paramsChunk;
    const body = text.trimEnd();
    this.heldWhitespace.set(chunk.callIndex, text.slice(body.length));
    if (body) this.emit({ index: chunk.callIndex, arguments: body });
  }

  /** A finished call (in order); calls without parameters produce no chunks, only this. */
  called(name: string, params: unknown): void {
    const index = this.completed++;
    if (this.ids[index] === undefined) {
      this.open(index, name);
      this.emit({ index, arguments: JSON.stringify(params ?? {}) });
    }
  }

  get count(): number {
    return this.ids.length;
  }

  private open(index: number, name: string): void {
    if (this.ids[index] !== undefined) return;
    const id = newCallId();
    this.ids[index] = id;
    this.emit({ index, id, name, arguments: "" });
  }
}
