import { InvalidArgumentError } from "commander";
import { MAX_CONTEXT_LENGTH, MIN_CONTEXT_LENGTH, REQUEST_LIMITS, parseInteger } from "@llmlb/runtime";

/**
 * A commander argParser from a check that throws an Error saying what it expected: a bad value is
 * then a usage error (exit 2) naming the flag, raised while the command line is parsed, before
 * the command does anything.
 */
export function flagValue<T>(parse: (raw: string) => T): (raw: string) => T {
  return (raw) => {
    try {
      return parse(raw);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

/** A number written in full ("12", "0.7"); "", "12abc" and "NaN" are not. */
function numberOf(raw: string): number {
  return raw.trim() === "" ? Number.NaN : Number(raw);
}

/** A whole number from min to max (the configuration's own check). */
export const wholeNumber = (min: number, max: number) => flagValue(parseInteger(min, max));

/** A number from min to max. */
export const numberBetween = (min: number, max: number) =>
  flagValue((raw) => {
    const n = numberOf(raw);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`expected a number from ${min} to ${max}`);
    return n;
  });

/** chat --max-tokens: what the node accepts as max_tokens. */
export const maxTokensFlag = wholeNumber(1, REQUEST_LIMITS.maxTokens);
/** chat --temperature: what the node accepts as temperature. */
export const temperatureFlag = numberBetween(0, 2);
/** chat --seed: an unsigned 32-bit seed, as the request carries it. */
export const seedFlag = wholeNumber(0, 2 ** 32 - 1);

/** register --context-length: tokens the catalog accepts, or 0 for the node's own setting. */
export const contextLengthFlag = flagValue((raw) => {
  const n = numberOf(raw);
  if (!Number.isInteger(n) || (n !== 0 && (n < MIN_CONTEXT_LENGTH || n > MAX_CONTEXT_LENGTH))) {
    throw new Error(`expected a number of tokens from ${MIN_CONTEXT_LENGTH} to ${MAX_CONTEXT_LENGTH} (0: the node's LLMLB_CONTEXT_SIZE)`);
  }
  return n;
});
