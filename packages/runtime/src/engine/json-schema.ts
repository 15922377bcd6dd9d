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
/**
 * Keywords that constrain nothing: dropped before the grammar is built. `discriminator` (OpenAPI,
 * pydantic's tagged unions) only names the property whose `const` in each alternative tells them apart.
 */
const ANNOTATIONS = new Set(["title", "description", "$schema", "$id", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly", "strict", "discriminator"]);
const FORMATS = new Set(["date-time", "date", "time"]);
const TYPES = new Set(["string", "number", "integer", "boolean", "null", "object", "array"]);
/** What a schema without `type` (or `true`) allows: every JSON value (integers are numbers). */
const ANY_TYPE = ["string", "number", "boolean", "null", "object", "array"];
/** Bounds that must be whole numbers of at least 0, with the lower one of each pair not above the upper. */
const BOUNDS: ReadonlyArray<readonly [string, string]> = [["minLength", "maxLength"], ["minItems", "maxItems"], ["minProperties", "maxProperties"]];
/** The keywords that apply to one type: what each alternative of a `type` list keeps. */
const KEYWORDS_OF_TYPE: Readonly<Record<string, readonly string[]>> = {
  string: ["minLength", "maxLength", "format"],
  object: ["properties", "additionalProperties", "minProperties", "maxProperties", "required"],
  array: ["items", "prefixItems", "minItems", "maxItems"],
};
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

type Schema = Record<string, unknown>;

/**
 * The schema as node-llama-cpp's grammar takes it, or INVALID_ARGUMENT naming the first keyword a
 * grammar cannot enforce (so output that claims to follow a schema always does). `field` is the
 * request field holding the schema.
 *
 * node-llama-cpp follows one kind of schema per node (a `$ref`, else `oneOf`, else `const`, else
 * `enum`, else a single `type` with its keywords) and drops the rest: a `type` list keeps no
 * keyword and never writes an object or an array. So a `type` list (and a schema without `type`)
 * becomes one alternative per type, each with the keywords of its type, and the keywords beside
 * `anyOf`/`oneOf` go into each alternative.
 */
export function grammarSchema(schema: JsonSchema, field: string): GbnfJsonSchema {
  const converted = forGrammar(convert(schema, field, "", 0), { field, left: MAX_SUBSCHEMAS }, "");
  refuseRecursion(converted, field);
  return converted as unknown as GbnfJsonSchema;
}

/** Deeper schemas are refused: a grammar for them would be huge, and nobody writes them. */
const MAX_DEPTH = 32;

/** The schema checked keyword by keyword, annotations dropped; not yet in the grammar's form. */
function convert(schema: unknown, field: string, path: string, depth: number): Schema {
  if (depth > MAX_DEPTH) throw unsupported(field, path, `the schema nests deeper than ${MAX_DEPTH} levels`);
  const next = (sub: unknown, at: string) => convert(sub, field, at, depth + 1);
  if (schema === true) return {};
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    throw unsupported(field, path, `a schema must be an object (got ${JSON.stringify(schema)})`);
  }
  const out: Schema = {};
  const numericBounds: Array<[string, unknown]> = [];
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
        out[keyword] = value.map((item, i) => next(item, `${at}/${i}`));
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
  for (const [keyword, bound] of numericBounds) {
    const numeric = typesOf(out).filter((type) => type === "number" || type === "integer");
    const heldByEveryInteger = numeric.every((type) => type === "integer") && typeof bound === "number" && NUMERIC_BOUNDS[keyword]!(bound);
    if (!heldByEveryInteger) throw unsupported(field, `${path}/${keyword}`, `the keyword "${keyword}" cannot be enforced by a grammar; remove it or check it in your code`);
  }
  return out;
}

/** The types a checked schema allows by its `type` (every type without one, an object's with only `properties`). */
function typesOf(schema: Schema): string[] {
  if ("type" in schema) return [schema.type as string | string[]].flat();
  return "properties" in schema ? ["object"] : ANY_TYPE;
}

/**
 * Subschemas a converted schema may hold. Alternatives multiply the keywords beside them (a
 * schema of a few KB nesting "at least one of" lists grew to millions), and node-llama-cpp builds
 * the grammar on the inference runner's thread: past this it would stall every request there.
 */
const MAX_SUBSCHEMAS = 2_000;

interface Conversion {
  field: string;
  /** Subschemas still allowed (MAX_SUBSCHEMAS). */
  left: number;
}

/** A checked schema in the form node-llama-cpp follows whole (see grammarSchema), its subschemas too. */
function forGrammar(schema: Schema, conversion: Conversion, path: string): Schema {
  const { field } = conversion;
  if (--conversion.left < 0) {
    throw unsupported(field, "", `the schema needs more than ${MAX_SUBSCHEMAS} subschemas once its alternatives carry the keywords beside them; simplify it (fewer or flatter anyOf/oneOf and type lists)`);
  }
  const sub = (value: Schema, at: string) => forGrammar(value, conversion, at);
  const { $defs, ...constraints } = schema;
  const withDefs = (shaped: Schema): Schema => ($defs ? { $defs: mapSchemas($defs as Record<string, Schema>, (def, key) => sub(def, `${path}/$defs/${key}`)), ...shaped } : shaped);
  const list = "anyOf" in constraints ? "anyOf" : "oneOf" in constraints ? "oneOf" : undefined;
  if (list) {
    const { [list]: alternatives, ...beside } = constraints;
    if ("oneOf" in beside) throw unsupported(field, path, `has both "anyOf" and "oneOf"; a grammar samples one list of alternatives: merge them into one`);
    return withDefs({ oneOf: (alternatives as Schema[]).map((alternative, i) => sub(besideInAlternative(beside, alternative, field, `${path}/${list}/${i}`), `${path}/${list}/${i}`)) });
  }
  if ("$ref" in constraints) {
    const beside = Object.keys(constraints).filter((keyword) => keyword !== "$ref");
    if (beside.length > 0) throw unsupported(field, path, `"$ref" has ${beside.map((k) => `"${k}"`).join(", ")} beside it, which a grammar does not follow with a reference; move them into the definition`);
    return withDefs(constraints);
  }
  if ("const" in constraints || "enum" in constraints) return withDefs(constraints);
  const typed: Schema[] = typesOf(constraints).map((type) => ({ ...pick(constraints, KEYWORDS_OF_TYPE[type] ?? []), type }));
  // An object alternative no object can match is left out while another type remains.
  const matchable = typed.flatMap((own): Schema[] => {
    if (own.type !== "object") return [own];
    const described = withRequiredDescribed(own, typed.length === 1 ? field : undefined, path);
    return described ? [described] : [];
  });
  const alternatives = matchable.map((own) => shapeSubschemas(own, sub, path));
  return withDefs(alternatives.length === 1 ? alternatives[0]! : { oneOf: alternatives });
}

/** The subschemas of one typed schema (properties, items, additionalProperties, prefixItems) in the grammar's form. */
function shapeSubschemas(schema: Schema, sub: (value: Schema, at: string) => Schema, path: string): Schema {
  const shaped: Schema = { ...schema };
  if (shaped.properties) shaped.properties = mapSchemas(shaped.properties as Record<string, Schema>, (value, key) => sub(value, `${path}/properties/${key}`));
  for (const keyword of ["items", "additionalProperties"]) {
    if (typeof shaped[keyword] === "object") shaped[keyword] = sub(shaped[keyword] as Schema, `${path}/${keyword}`);
  }
  if (shaped.prefixItems) shaped.prefixItems = (shaped.prefixItems as Schema[]).map((item, i) => sub(item, `${path}/prefixItems/${i}`));
  return shaped;
}

/**
 * An object schema whose `required` names only properties it describes: node-llama-cpp writes the
 * described properties (all of them) and no others, so a required name it does not describe is
 * described as `additionalProperties` allows it (any value, or that schema). When
 * `additionalProperties: false` forbids it no object can match: undefined, or refused naming
 * `field` when given (the object is the schema's only type).
 */
function withRequiredDescribed(schema: Schema, field: string | undefined, path: string): Schema | undefined {
  const properties = (schema.properties as Record<string, Schema> | undefined) ?? {};
  const missing = ((schema.required as string[] | undefined) ?? []).filter((name) => !Object.hasOwn(properties, name));
  if (missing.length === 0) return schema;
  const extra = schema.additionalProperties;
  if (extra === false) {
    if (field === undefined) return undefined;
    throw unsupported(field, path, `"required" names ${missing.map((name) => `"${name}"`).join(", ")}, which "properties" does not describe and "additionalProperties": false forbids, so no object could match`);
  }
  const described = typeof extra === "object" && extra !== null ? (extra as Schema) : {};
  return { ...schema, properties: { ...properties, ...Object.fromEntries(missing.map((name) => [name, described])) } };
}

function mapSchemas(schemas: Record<string, Schema>, map: (schema: Schema, key: string) => Schema): Record<string, Schema> {
  return Object.fromEntries(Object.entries(schemas).map(([key, value]) => [key, map(value, key)]));
}

/**
 * An alternative of `anyOf`/`oneOf` with the keywords beside the list added (both must hold):
 * `required` names and `properties` joined, `type` narrowed to the types both allow, any other
 * keyword taken as it is. A keyword both give differently (a property both describe differently,
 * types in common none), or `additionalProperties` on one side with a property only the other side
 * describes, is refused: the grammar could not enforce both.
 */
function besideInAlternative(beside: Schema, alternative: Schema, field: string, path: string): Schema {
  const merged: Schema = { ...alternative };
  const differently = (keyword: string) =>
    unsupported(field, path, `"${keyword}" is given both beside "anyOf"/"oneOf" and in this alternative, differently; a grammar samples one alternative: write it once, in each alternative`);
  for (const [keyword, value] of Object.entries(beside)) {
    if (!(keyword in alternative)) {
      merged[keyword] = value;
    } else if (keyword === "required") {
      merged.required = [...new Set([...(alternative.required as string[]), ...(value as string[])])];
    } else if (keyword === "properties") {
      const theirs = alternative.properties as Schema;
      for (const [name, property] of Object.entries(value as Schema)) {
        if (Object.hasOwn(theirs, name) && JSON.stringify(theirs[name]) !== JSON.stringify(property)) throw differently(`properties/${name}`);
      }
      merged.properties = { ...(value as Schema), ...theirs };
    } else if (keyword === "type") {
      const common = commonTypes(typesOf(beside), typesOf(alternative));
      if (common.length === 0) throw unsupported(field, path, `"type" beside "anyOf"/"oneOf" and this alternative's "type" have no type in common, so no value could match it; remove the alternative or correct the types`);
      merged.type = common;
    } else if (JSON.stringify(alternative[keyword]) !== JSON.stringify(value)) {
      throw differently(keyword);
    }
  }
  // additionalProperties limits every property its own schema does not describe, even one the other side does.
  const describes = (schema: Schema) => Object.keys((schema.properties as Schema | undefined) ?? {});
  const limited = (limiting: Schema, other: Schema) => "additionalProperties" in limiting && describes(other).some((name) => !describes(limiting).includes(name));
  if (limited(beside, alternative) || limited(alternative, beside)) {
    throw unsupported(field, path, `"additionalProperties" on one side of "anyOf"/"oneOf" limits the properties only the other side describes; describe every property and "additionalProperties" on the same side`);
  }
  return merged;
}

/** The types two `type` keywords both allow (integers are numbers). */
function commonTypes(a: readonly string[], b: readonly string[]): string[] {
  const common = new Set<string>();
  for (const type of a) {
    if (b.includes(type)) common.add(type);
    else if ((type === "integer" && b.includes("number")) || (type === "number" && b.includes("integer"))) common.add("integer");
  }
  return [...common];
}

function pick(schema: Schema, keywords: readonly string[]): Schema {
  return Object.fromEntries(keywords.filter((keyword) => keyword in schema).map((keyword) => [keyword, schema[keyword]]));
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
