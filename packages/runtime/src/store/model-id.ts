import { LlmlbError } from "../errors/index.js";

/** Longest model id accepted (it becomes a directory name under <home>/models). */
export const MAX_MODEL_ID_LENGTH = 128;

const SEGMENT = "[a-z0-9][a-z0-9._-]*";
const MODEL_ID = new RegExp(`^${SEGMENT}(/${SEGMENT})?$`);

/**
 * Checks a model id: lower-case letters, digits, '.', '-', '_' and at most one '/'
 * (namespace/name), no '..', at most 128 characters. The one check every component uses.
 */
export function validateModelId(id: string): string {
  const problem = modelIdProblem(id);
  if (problem) throw new LlmlbError("INVALID_MODEL_ID", `invalid model id ${JSON.stringify(id)}: ${problem}`, { model_id: id.slice(0, 200) });
  return id;
}

export function isValidModelId(id: string): boolean {
  return modelIdProblem(id) === undefined;
}

function modelIdProblem(id: string): string | undefined {
  if (id.length === 0) return "it is empty";
  if (id.length > MAX_MODEL_ID_LENGTH) return `it is longer than ${MAX_MODEL_ID_LENGTH} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id)) return "it contains control characters";
  if (id.includes("..")) return "it contains '..'";
  if (id.includes("\\")) return "it contains '\\'";
  if (!MODEL_ID.test(id)) {
    return "expected lower-case letters, digits, '.', '-', '_' and at most one '/' (namespace/name), starting with a letter or digit";
  }
  return undefined;
}
