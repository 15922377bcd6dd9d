import { LlmlbError } from "../errors/index.js";

/** A JSON Schema (sub)schema: as the request gave it, checked, or in the grammar's form. */
export type Schema = Record<string, unknown>;

/** What a schema without `type` (or `true`) allows: every JSON value (integers are numbers). */
export const ANY_TYPE = ["string", "number", "boolean", "null", "object", "array"];

/** Each schema of a map (properties, $defs) through `map`, keys kept. */
export function mapSchemas<T>(schemas: Record<string, T>, map: (schema: T, key: string) => Schema): Record<string, Schema> {
  return Object.fromEntries(Object.entries(schemas).map(([key, value]) => [key, map(value, key)]));
}

/** The JSON Schema type of a value (`const`, `enum`): integers are "integer". */
export function typeOfValue(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

/** The types a checked schema allows by its `type` (every type without one, an object's with only `properties`). */
export function typesOf(schema: Schema): string[] {
  if ("type" in schema) return [schema.type as string | string[]].flat();
  return "properties" in schema ? ["object"] : ANY_TYPE;
}

/** The types two `type` keywords both allow (integers are numbers). */
export function commonTypes(a: readonly string[], b: readonly string[]): string[] {
  const common = new Set<string>();
  for (const type of a) {
    if (b.includes(type)) common.add(type);
    else if ((type === "integer" && b.includes("number")) || (type === "number" && b.includes("integer"))) common.add("integer");
  }
  return [...common];
}

export function unsupported(field: string, path: string, problem: string): LlmlbError {
  return new LlmlbError("INVALID_ARGUMENT", `${field}${path ? ` at ${path}` : ""}: ${problem}`, { field });
}
