import type { GbnfJsonSchema } from "node-llama-cpp";
import { LlmlbError } from "../errors/index.js";
import type { JsonSchema } from "./types.js";

/** Keywords node-llama-cpp's JSON-schema grammar enforces (anyOf is sampled as oneOf). */
const ENFORCED = new Set([
  "type", "const", "enum", "oneOf", "anyOf", "$defs", "$ref",
  "minLength", "maxLength", "format",
  "properties", "additionalProperties", "minProperties", "maxProperties", "required",
  "items", "prefixItems", "minItems", "maxItems",
]);
/** Keywords that constrain nothing: dropped before the grammar is built. */
const ANNOTATIONS = new Set(["title", "description", "$schema", "$id", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly", "strict"]);
const FORMATS = new Set(["date-time", "date", "time"]);
const TYPES = new Set(["string", "number", "integer", "boolean", "null", "object", "array"]);
/** Bounds that must be whole numbers of at least 0, with the lower one of each pair not above the upper. */
const BOUNDS: ReadonlyArray<readonly [string, string]> = [["minLength", "maxLength"], ["minItems", "maxItems"], ["minProperties", "maxProperties"]];
const ANY_JSON = { type: ["string", "number", "boolean", "null", "object", "array"] } as const;

/**
 * The schema as node-llama-cpp's grammar takes it, or INVALID_ARGUMENT naming the first keyword a
 * grammar cannot enforce (so output that claims to follow a schema always does). `field` is the
 * request field holding the schema.
 */
export function grammarSchema(schema: JsonSchema, field: string): GbnfJsonSchema {
  const converted = convert(schema, field, "", 0);
  refuseRecursion(converted, field);
  return converted as unknown as GbnfJsonSchema;
}

/** Deeper schemas are refused: a grammar for them would be huge, and nobody writes them. */
const MAX_DEPTH = 32;

function convert(schema: unknown, field: string, path: string, depth: number): Record<string, unknown> {
  if (depth > MAX_DEPTH) throw unsupported(field, path, `the schema nests deeper than ${MAX_DEPTH} levels`);
  const next = (sub: unknown, at: string) => convert(sub, field, at, depth + 1);
  if (schema === true) return { ...ANY_JSON };
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    throw unsupported(field, path, `a schema must be an object (got ${JSON.stringify(schema)})`);
  }
  const out: Record<string, unknown> = {};
  for (const [keyword, value] of Object.entries(schema)) {
    if (ANNOTATIONS.has(keyword)) continue;
    if (!ENFORCED.has(keyword)) {
      throw unsupported(field, path, `the keyword "${keyword}" cannot be enforced by a grammar; remove it or check it in your code`);
    }
    const at = `${path}/${keyword}`;
    switch (keyword) {
      case "properties":
      case "$defs":
        out[keyword] = mapValues(value, field, at, next);
        break;
      case "items":
      case "additionalProperties":
        out[keyword] = typeof value === "boolean" && keyword === "additionalProperties" ? value : next(value, at);
        break;
      case "oneOf":
      case "anyOf":
      case "prefixItems":
        if (!Array.isArray(value)) throw unsupported(field, at, "must be an array of schemas");
        if (value.length === 0 && keyword !== "prefixItems") throw unsupported(field, at, "is empty, so no value could match; list at least one schema");
        out[keyword === "anyOf" ? "oneOf" : keyword] = value.map((item, i) => next(item, `${at}/${i}`));
        break;
      case "format":
        if (!FORMATS.has(String(value))) throw unsupported(field, at, `the format "${String(value)}" cannot be enforced by a grammar (only date-time, date and time)`);
        out[keyword] = value;
        break;
      case "$ref":
        if (typeof value !== "string" || !value.startsWith("#/$defs/")) throw unsupported(field, at, `only references into "#/$defs/" are supported (got ${JSON.stringify(value)})`);
        out[keyword] = value;
        break;
      case "enum":
        if (!Array.isArray(value) || value.some((v) => v !== null && typeof v === "object")) throw unsupported(field, at, "must list strings, numbers, booleans or null");
        if (value.length === 0) throw unsupported(field, at, "is empty, so no value could match; list at least one value");
        out[keyword] = value;
        break;
      case "type":
        checkType(value, field, at);
        out[keyword] = value;
        break;
      case "required":
        if (!Array.isArray(value) || value.some((name) => typeof name !== "string")) throw unsupported(field, at, "must be an array of property names");
        out[keyword] = value;
        break;
      default:
        out[keyword] = value;
    }
  }
  checkBounds(out, field, path);
  if (!("type" in out || "const" in out || "enum" in out || "oneOf" in out || "$ref" in out)) {
    return "properties" in out ? { ...out, type: "object" } : { ...ANY_JSON, ...out };
  }
  return out;
}

function checkType(value: unknown, field: string, path: string): void {
  const types = Array.isArray(value) ? value : [value];
  const allowed = [...TYPES].map((t) => JSON.stringify(t)).join(", ");
  if (types.length === 0) throw unsupported(field, path, `is empty, so no value could match; name one of ${allowed}`);
  for (const type of types) {
    if (typeof type !== "string" || !TYPES.has(type)) throw unsupported(field, path, `${JSON.stringify(type)} is not a JSON Schema type; use one of ${allowed}`);
  }
}

function checkBounds(schema: Record<string, unknown>, field: string, path: string): void {
  for (const [low, high] of BOUNDS) {
    for (const keyword of [low, high]) {
      const value = schema[keyword];
      if (value !== undefined && !(Number.isInteger(value) && (value as number) >= 0)) {
        throw unsupported(field, `${path}/${keyword}`, `must be a whole number of at least 0 (got ${JSON.stringify(value)})`);
      }
    }
    const [min, max] = [schema[low] as number | undefined, schema[high] as number | undefined];
    if (min !== undefined && max !== undefined && min > max) {
      throw unsupported(field, path, `${low} ${min} is above ${high} ${max}, so no value could match`);
    }
  }
}

function mapValues(value: unknown, field: string, path: string, next: (sub: unknown, at: string) => Record<string, unknown>): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw unsupported(field, path, "must be an object of schemas");
  return Object.fromEntries(Object.entries(value).map(([key, sub]) => [key, next(sub, `${path}/${key}`)]));
}

/** A $ref that reaches itself (a recursive schema) has no finite grammar here: refused. */
function refuseRecursion(schema: Record<string, unknown>, field: string): void {
  const defs = new Map<string, unknown>();
  const collectDefs = (node: unknown): void => {
    if (typeof node !== "object" || node === null) return;
    for (const [key, value] of Object.entries(node)) {
      if (key === "$defs" && typeof value === "object" && value !== null) for (const [name, def] of Object.entries(value)) defs.set(name, def);
      collectDefs(value);
    }
  };
  collectDefs(schema);
  const refsOf = (node: unknown, found: Set<string>): Set<string> => {
    if (typeof node !== "object" || node === null) return found;
    for (const [key, value] of Object.entries(node)) {
      if (key === "$ref" && typeof value === "string") found.add(value.slice("#/$defs/".length));
      else refsOf(value, found);
    }
    return found;
  };
  const visit = (name: string, trail: string[]): void => {
    if (trail.includes(name)) throw unsupported(field, `/$defs/${name}`, `"$ref" is recursive (${[...trail, name].join(" -> ")}); a grammar needs a bounded schema`);
    if (!defs.has(name)) throw unsupported(field, "", `"$ref" names "#/$defs/${name}", which is not defined`);
    for (const ref of refsOf(defs.get(name), new Set())) visit(ref, [...trail, name]);
  };
  for (const ref of refsOf(schema, new Set())) visit(ref, []);
}

function unsupported(field: string, path: string, problem: string): LlmlbError {
  return new LlmlbError("INVALID_ARGUMENT", `${field}${path ? ` at ${path}` : ""}: ${problem}`, { field });
}
