export { InferenceEngine, type InferenceEngineOptions } from "./engine.js";
export type {
  AdapterLocator,
  ChatInput,
  ChatMessage,
  ChatRole,
  DeltaParts,
  JsonSchema,
  OutputParams,
  ReasoningEffort,
  ReasoningOptions,
  ResponseFormat,
  TokenLogprob,
  ToolCall,
  ToolCallDelta,
  ToolChoice,
  ToolDefinition,
  TopLogprob,
  CompletionInput,
  EmbedInput,
  EmbedResult,
  EngineSettings,
  FinishReason,
  GenerationEvent,
  LoadedModelInfo,
  LocatedModel,
  ModelLocator,
  ModelTarget,
  RequestOptions,
  SamplingParams,
  TokenUsage,
} from "./types.js";
export { REQUEST_LIMITS, type UncheckedChatInput } from "./request-validation.js";
export { llamaOptionsFor, loadLlama, resolveThreads, type GpuBackend } from "./llama-backend.js";
export { checkGgufFile, validateGgufFiles, embeddedTemplateCheck } from "./gguf-check.js";
export { TemplateSandbox, DEFAULT_TEMPLATE_LIMITS, type TemplateLimits, type RenderOutcome } from "./template-sandbox.js";
export { chatTemplateProblem } from "./chat-template-check.js";
export { samplingOptions, DEFAULT_TEMPERATURE } from "./sampling.js";
export { engineSettingsFrom } from "./engine-settings.js";
export { createRunnerEngine, type RunnerEngine, type RunnerEngineOptions } from "./runner/runner-engine.js";
export type { Engine } from "./runner/protocol.js";
