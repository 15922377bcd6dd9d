import { LlmlbError } from "./llmlb-error.js";

/** INVALID_ARGUMENT naming the offending request field by its proto name. */
export function invalidField(field: string, problem: string): LlmlbError {
  return new LlmlbError("INVALID_ARGUMENT", `${field} ${problem}`, { field });
}

/** A request field that carries JSON text, parsed; invalid JSON is INVALID_ARGUMENT naming the field. */
export function parseJsonField(text: string, field: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw invalidField(field, "is not valid JSON");
  }
}
