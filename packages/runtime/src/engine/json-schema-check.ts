/**
 * The first pass from a request's JSON Schema to a grammar: every keyword checked (refused with
 * INVALID_ARGUMENT naming it when a grammar cannot keep it), annotations dropped, what generators
 * write in other dialects (draft-07) said the one way json-schema.ts reads.
 */
import { mapSchemas, typesOf, unsupported, type Schema } from "./json-schema-common.js";

/** Keywords node-llama-cpp's JSON-schema grammar enforces (anyOf is sampled as oneOf). */
const ENFORCED = new Set([
  "type", "const", "enum", "oneOf", "anyOf", "allOf", "$defs", "definitions", "$ref",
  "minLength", "maxLength", "format",
  "properties", "additionalProperties", "minProperties", "maxProperties", "required",
  "items", "prefixItems", "additionalItems", "minItems", "maxItems", "propertyNames",
]);
/**
 * Keywords that constrain nothing: dropped before the grammar is built. `discriminator` (OpenAPI,
 * pydantic's tagged unions) only names the property whose `const` in each alternative tells them apart.
 */
const ANNOTATIONS = new Set(["title", "description", "$schema", "$id", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly", "strict", "discriminator"]);
const FORMATS = new Set(["date-time", "date", "time"]);
const TYPES = new Set(["string", "number", "integer", "boolean", "null", "object", "array"]);
/** Bounds that must be whole numbers of at least 0, with the lower one of each pair not above the upper. */
const BOUNDS: ReadonlyArray<readonly [string, string]> = [["minLength", "maxLength"], ["minItems", "maxItems"], ["minProperties", "maxProperties"]];
/**
 * The largest integer the grammar writes: 15 digits, no exponent (patches/node-llama-cpp+*.patch).
 * A `minimum` or `maximum` beyond it holds for every integer sampled, so it is taken: zod writes
 * ±(2^53 − 1) for every `.int()`. Any other numeric bound cannot be enforced.
 */
const LARGEST_GRAMMAR_INTEGER = 999_999_999_999_999;
const NUMERIC_BOUNDS: Readonly<Record<string, (bound: number) => boolean>> = {
  minimum: (bound) => bound <= -LARGEST_GRAMMAR_INTEGER,
  exclusiveMinimum: (bound) => bound < -LARGEST_GRAMMAR_INTEGER,
  maximum: (bound) => bound >= LARGEST_GRAMMAR_INTEGER,
  exclusiveMaximum: (bound) => bound > LARGEST_GRAMMAR_INTEGER,
};

/** Control characters, which node-llama-cpp writes unescaped into property names and string values (invalid JSON). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f]/;

/** Deeper schemas are refused: a grammar for them would be huge, and nobody writes them. */
const MAX_DEPTH = 32;

/** The schema checked keyword by keyword, annotations dropped; not yet in the grammar's form. */
export function convert(schema: unknown, field: string, path: string, depth: number): Schema {
  if (depth > MAX_DEPTH) throw unsupported(field, path, `the schema nests deeper than ${MAX_DEPTH} levels`);
  const next = (sub: unknown, at: string) => convert(sub, field, at, depth + 1);
  if (schema === true) return {};
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    throw unsupported(field, path, `a schema must be an object (got ${JSON.stringify(schema)})`);
  }
  const out: Schema = {};
  const numericBounds: Array<[string, unknown]> = [];
  let format: unknown;
  let noMoreItems = false;
  for (const [keyword, value] of Object.entries(schema)) {
    if (ANNOTATIONS.has(keyword)) continue;
    if (keyword in NUMERIC_BOUNDS) {
      numericBounds.push([keyword, value]);
      continue;
    }
    if (!ENFORCED.has(keyword)) {
      throw unsupported(field, path, `the keyword "${keyword}" cannot be enforced by a grammar; remove it or check it in your code`);
    }
    const at = `${path}/${keyword}`;
    switch (keyword) {
      case "properties": {
        const named = Object.keys(typeof value === "object" && value !== null ? value : {}).find((name) => CONTROL.test(name));
        if (named !== undefined) throw unsupported(field, at, `the property name ${JSON.stringify(named)} holds a control character, which the grammar would write unescaped (invalid JSON); rename it`);
        out[keyword] = mapValues(value, field, at, next);
        break;
      }
      case "$defs":
      case "definitions":
        // draft-07's "definitions" (zod-to-json-schema, pydantic v1) are the same definitions.
        out.$defs = { ...(out.$defs as Schema | undefined), ...mapValues(value, field, at, next) };
        break;
      case "items":
        // draft-07: an array of schemas is prefixItems; false (zod's tuples) allows nothing after them.
        if (Array.isArray(value)) out.prefixItems = value.map((item, i) => next(item, `${at}/${i}`));
        else if (value === false) noMoreItems = true;
        else out.items = next(value, at);
        break;
      case "additionalItems":
        if (value === false) noMoreItems = true;
        else if (value !== true) out.items = next(value, at);
        break;
      case "additionalProperties":
        out[keyword] = typeof value === "boolean" ? value : next(value, at);
        break;
      case "propertyNames": {
        // Every property name is a string: only a constraint that says no more than that is taken.
        const saysNothing = value === true || JSON.stringify(value) === "{}" || JSON.stringify(value) === '{"type":"string"}';
        if (!saysNothing) throw unsupported(field, at, 'a grammar cannot constrain property names beyond being strings; remove "propertyNames" or check them in your code');
        break;
      }
      case "oneOf":
      case "anyOf":
      case "allOf":
      case "prefixItems":
        if (!Array.isArray(value)) throw unsupported(field, at, "must be an array of schemas");
        if (value.length === 0 && keyword !== "prefixItems") throw unsupported(field, at, "is empty, so no value could match; list at least one schema");
        out[keyword] = value.map((item, i) => next(item, `${at}/${i}`));
        break;
      case "format":
        format = value;
        break;
      case "$ref": {
        const name = typeof value === "string" ? /^#\/(?:\$defs|definitions)\/(.+)$/.exec(value)?.[1] : undefined;
        if (name === undefined) throw unsupported(field, at, `only references into "#/$defs/" (or "#/definitions/") are supported (got ${JSON.stringify(value)})`);
        out[keyword] = `#/$defs/${name}`;
        break;
      }
      case "const":
        if (value !== null && typeof value === "object") throw unsupported(field, at, "must be a string, number, boolean or null: a grammar cannot write an object or array constant; describe it with properties or items");
        if (typeof value === "string" && CONTROL.test(value)) throw unsupported(field, at, "holds a control character, which the grammar would write unescaped (invalid JSON)");
        out[keyword] = value;
        break;
      case "enum":
        if (!Array.isArray(value) || value.some((v) => v !== null && typeof v === "object")) throw unsupported(field, at, "must list strings, numbers, booleans or null");
        if (value.length === 0) throw unsupported(field, at, "is empty, so no value could match; list at least one value");
        if (value.some((v) => typeof v === "string" && CONTROL.test(v))) throw unsupported(field, at, "lists a string with a control character, which the grammar would write unescaped (invalid JSON)");
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
  if (noMoreItems) out.maxItems = Math.min((out.maxItems as number | undefined) ?? Infinity, (out.prefixItems as unknown[] | undefined)?.length ?? 0);
  // "format" constrains strings only: beside a type without "string" (OpenAPI's int64, double) it says nothing.
  if (format !== undefined && typesOf(out).includes("string")) {
    if (!FORMATS.has(String(format))) throw unsupported(field, `${path}/format`, `the format "${String(format)}" cannot be enforced by a grammar (only date-time, date and time)`);
    if ("minLength" in out || "maxLength" in out) throw unsupported(field, `${path}/format`, `a grammar writes a ${String(format)} whole: it cannot also bound its length; drop minLength/maxLength`);
    out.format = format;
  }
  checkBounds(out, field, path);
  checkWhatIsWrittenWhole(out, field, path);
  for (const [keyword, bound] of numericBounds) {
    const numeric = typesOf(out).filter((type) => type === "number" || type === "integer");
    const heldByEveryInteger = numeric.every((type) => type === "integer") && typeof bound === "number" && NUMERIC_BOUNDS[keyword]!(bound);
    if (!heldByEveryInteger) throw unsupported(field, `${path}/${keyword}`, `the keyword "${keyword}" cannot be enforced by a grammar; remove it or check it in your code`);
  }
  return out;
}

/**
 * node-llama-cpp writes every property an object describes and every prefixItems entry of an
 * array: a maxProperties or maxItems below those counts could never hold.
 */
function checkWhatIsWrittenWhole(schema: Schema, field: string, path: string): void {
  const described = Object.keys((schema.properties as Schema | undefined) ?? {}).length;
  if (typeof schema.maxProperties === "number" && schema.maxProperties < described) {
    throw unsupported(field, `${path}/maxProperties`, `is ${schema.maxProperties}, but a grammar writes all ${described} properties described; raise it or describe fewer`);
  }
  const prefix = (schema.prefixItems as unknown[] | undefined)?.length ?? 0;
  if (typeof schema.maxItems === "number" && schema.maxItems < prefix) {
    throw unsupported(field, `${path}/maxItems`, `is ${schema.maxItems}, but a grammar writes all ${prefix} prefixItems; raise it or list fewer`);
  }
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
  return mapSchemas(value as Record<string, unknown>, (sub, key) => next(sub, `${path}/${key}`));
}

/**
 * A $ref that reaches itself (a recursive schema) has no finite grammar here: refused, as a
 * reference to nothing is. Each definition is followed once (models referring to the same ones
 * made this take seconds). Returns every definition by name.
 */
export function refuseRecursion(schema: Schema, field: string): Map<string, Schema> {
  const defs = new Map<string, Schema>();
  const collectDefs = (node: unknown): void => {
    if (typeof node !== "object" || node === null) return;
    for (const [key, value] of Object.entries(node)) {
      if (key === "$defs" && typeof value === "object" && value !== null) for (const [name, def] of Object.entries(value)) defs.set(name, def as Schema);
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
  const bounded = new Set<string>();
  const visit = (name: string, trail: string[]): void => {
    if (trail.includes(name)) throw unsupported(field, `/$defs/${name}`, `"$ref" is recursive (${[...trail, name].join(" -> ")}); a grammar needs a bounded schema`);
    if (bounded.has(name)) return;
    if (!defs.has(name)) throw unsupported(field, "", `"$ref" names "#/$defs/${name}", which is not defined`);
    for (const ref of refsOf(defs.get(name), new Set())) visit(ref, [...trail, name]);
    bounded.add(name);
  };
  for (const ref of refsOf(schema, new Set())) visit(ref, []);
  return defs;
}

