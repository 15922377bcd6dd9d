import { parseDuration } from "@llmlb/runtime";
import type { SamplingBody } from "./schemas.js";

/** Maps OpenAI sampling fields onto the fields ChatRequest and CompleteRequest share. */
export function samplingFields(body: SamplingBody) {
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  const seed = body.seed ?? undefined;
  return {
    modelId: body.model,
    ...(maxTokens != null ? { maxTokens } : {}),
    ...(body.temperature != null ? { temperature: body.temperature } : {}),
    ...(body.top_p != null ? { topP: body.top_p } : {}),
    ...(body.top_k != null ? { topK: body.top_k } : {}),
    ...(seed !== undefined ? { seed: seed >>> 0 } : {}),
    ...(body.presence_penalty != null ? { presencePenalty: body.presence_penalty } : {}),
    ...(body.frequency_penalty != null ? { frequencyPenalty: body.frequency_penalty } : {}),
    stop: body.stop == null ? [] : Array.isArray(body.stop) ? body.stop : [body.stop],
    logitBias: Object.fromEntries(Object.entries(body.logit_bias ?? {}).map(([token, bias]) => [Number(token), bias])),
    adapterIds: body.adapters ?? [],
    noWait: body.wait_for_model === false,
    ...keepAliveField(body.keep_alive),
  };
}

/**
 * The fields of choice `index` of `count`: with a seed, each choice gets its own (seed + index), so
 * the choices differ yet the whole answer stays reproducible. keep_alive 0 ("unload after the
 * answer") applies to the last choice only: the choices before it leave the model loaded for the next.
 */
export function choiceSampling<T extends { seed?: number; keepAlive?: string }>(fields: T, index: number, count: number): T {
  const { keepAlive, ...rest } = fields;
  const unloadsNow = keepAlive !== undefined && index < count - 1 && unloadsAtOnce(keepAlive);
  const choice = (unloadsNow ? rest : fields) as T;
  return index === 0 || fields.seed === undefined ? choice : { ...choice, seed: (fields.seed + index) >>> 0 };
}

function unloadsAtOnce(keepAlive: string): boolean {
  try {
    return parseDuration(keepAlive) === 0;
  } catch {
    return false; // the service names the bad value
  }
}

/** keep_alive as the services take it (the duration text; a number is seconds). */
export function keepAliveField(value: string | number | undefined): { keepAlive?: string } {
  return value === undefined ? {} : { keepAlive: String(value) };
}
