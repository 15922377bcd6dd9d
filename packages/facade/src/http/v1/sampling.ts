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
 * The fields of choice `index`: with a seed, each choice gets its own (seed + index), so the
 * choices differ yet the whole answer stays reproducible. (Every choice carries the request's
 * keep_alive: they run at once, and the model expires after the last one gives it back.)
 */
export function choiceSampling<T extends { seed?: number }>(fields: T, index: number): T {
  return index === 0 || fields.seed === undefined ? fields : { ...fields, seed: (fields.seed + index) >>> 0 };
}

/** keep_alive as the services take it (the duration text; a number is seconds). */
export function keepAliveField(value: string | number | undefined): { keepAlive?: string } {
  return value === undefined ? {} : { keepAlive: String(value) };
}
