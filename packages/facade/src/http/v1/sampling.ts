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

/** How long the calls of a wave that more calls follow keep the model loaded at least (see keepAliveBetweenWaves). */
const BETWEEN_WAVES = "10s";

/**
 * keep_alive for the calls of a request that more of its calls follow. A keep_alive of 0 (or
 * shorter than the moment between two waves) would unload the model after each wave and load it
 * again for the next: these calls keep it BETWEEN_WAVES long, and the last wave's own keep_alive
 * then applies. A value that does not parse is left to the service, which refuses it naming the field.
 */
export function keepAliveBetweenWaves(value: string | number | undefined): { keepAlive?: string } {
  const field = keepAliveField(value);
  if (field.keepAlive === undefined) return field;
  try {
    const ms = parseDuration(field.keepAlive);
    return ms >= 0 && ms < parseDuration(BETWEEN_WAVES) ? { keepAlive: BETWEEN_WAVES } : field;
  } catch {
    return field;
  }
}
