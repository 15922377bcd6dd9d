import type { GbnfJsonSchema } from "node-llama-cpp";
import { LlmlbError } from "../errors/index.js";
import type { JsonSchema } from "./types.js";

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
  const checked = convert(schema, field, "", 0);
  const defs = refuseRecursion(checked, field);
  return forGrammar(checked, { field, left: MAX_SUBSCHEMAS, defs }, "") as unknown as GbnfJsonSchema;
}

/** Control characters, which node-llama-cpp writes unescaped into property names and string values (invalid JSON). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f]/;

/** The JSON Schema type of a value (`const`, `enum`): integers are "integer". */
function typeOfValue(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

/** Whether a schema bounds a string's length anywhere (a property named maxLength counts too: the answer errs toward yes). */
export function mentionsMaxLength(schema: unknown): boolean {
  return typeof schema === "object" && schema !== null && Object.entries(schema).some(([key, value]) => key === "maxLength" || mentionsMaxLength(value));
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
  /** Every definition, by name (see refuseRecursion). */
  defs: ReadonlyMap<string, Schema>;
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
  if ("allOf" in constraints) {
    // Every part holds: each is merged in as keywords beside the rest are (see besideInAlternative).
    const { allOf, ...rest } = constraints;
    const merged = (allOf as Schema[]).reduce((whole, part, i) => besideInAlternative(part, whole, field, `${path}/allOf/${i}`), rest);
    return withDefs(forGrammar(merged, conversion, path));
  }
  const list = "anyOf" in constraints ? "anyOf" : "oneOf" in constraints ? "oneOf" : undefined;
  if (list) {
    const { [list]: listed, ...beside } = constraints;
    if ("oneOf" in beside) throw unsupported(field, path, `has both "anyOf" and "oneOf"; a grammar samples one list of alternatives: merge them into one`);
    const alternatives = (listed as Schema[]).map((alternative, i) => besideInAlternative(beside, alternative, field, `${path}/${list}/${i}`));
    if (list === "oneOf") refuseOverlap(alternatives, conversion, path);
    return withDefs({ oneOf: alternatives.map((alternative, i) => sub(alternative, `${path}/${list}/${i}`)) });
  }
  if ("$ref" in constraints) {
    const { $ref, ...beside } = constraints;
    if (Object.keys(beside).length === 0) return withDefs(constraints);
    // Keywords beside a reference hold too: the definition is written out here with them.
    const def = conversion.defs.get(String($ref).slice("#/$defs/".length))!;
    return withDefs(forGrammar(besideInAlternative(beside, def, field, path), conversion, path));
  }
  if ("const" in constraints || "enum" in constraints) return withDefs(valuesOfItsType(constraints, field, path));
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

/**
 * A `const` or `enum` beside a `type`: node-llama-cpp writes the values whatever the type, so the
 * values of another type are left out (refused when none is left).
 */
function valuesOfItsType(schema: Schema, field: string, path: string): Schema {
  if (!("type" in schema)) return schema;
  const types = typesOf(schema);
  const fits = (value: unknown) => types.includes(typeOfValue(value)) || (typeOfValue(value) === "integer" && types.includes("number"));
  if ("const" in schema) {
    if (!fits(schema.const)) throw unsupported(field, `${path}/const`, `${JSON.stringify(schema.const)} is not of the type ${JSON.stringify(schema.type)} beside it, so no value could match`);
    return schema;
  }
  const values = (schema.enum as unknown[]).filter(fits);
  if (values.length === 0) throw unsupported(field, `${path}/enum`, `lists no value of the type ${JSON.stringify(schema.type)} beside it, so no value could match`);
  return { ...schema, enum: values };
}

/**
 * `oneOf` means exactly one alternative matches, and a grammar samples one without knowing the
 * others: refused unless no value can match two of them (different types, different values, a
 * property whose constant differs, or a property one writes that the other forbids).
 */
function refuseOverlap(alternatives: readonly Schema[], conversion: Conversion, path: string): void {
  const resolved = alternatives.map((alternative) => ("$ref" in alternative ? (conversion.defs.get(String(alternative.$ref).slice("#/$defs/".length)) ?? alternative) : alternative));
  for (let i = 0; i < resolved.length; i++) {
    for (let j = i + 1; j < resolved.length; j++) {
      if (!canBothMatch(resolved[i]!, resolved[j]!)) continue;
      throw unsupported(conversion.field, `${path}/oneOf`, `alternatives ${i} and ${j} can both match one value, and a grammar cannot keep an answer to exactly one of them; use "anyOf" if either will do, or tell them apart (different types, or a property with a different "const" in each)`);
    }
  }
}

/** Whether one value could match both schemas, as far as node-llama-cpp writes them (every described property). */
function canBothMatch(a: Schema, b: Schema): boolean {
  const literals = (schema: Schema): unknown[] | undefined => ("const" in schema ? [schema.const] : (schema.enum as unknown[] | undefined));
  const types = (schema: Schema) => literals(schema)?.map(typeOfValue) ?? typesOf(schema);
  if (commonTypes(types(a), types(b)).length === 0) return false;
  const [la, lb] = [literals(a), literals(b)];
  if (la && lb) return la.some((value) => lb.some((other) => JSON.stringify(other) === JSON.stringify(value)));
  if (la || lb || !types(a).includes("object") || !types(b).includes("object") || types(a).length > 1 || types(b).length > 1) return true;
  const [pa, pb] = [(a.properties as Record<string, Schema> | undefined) ?? {}, (b.properties as Record<string, Schema> | undefined) ?? {}];
  for (const name of Object.keys(pa)) {
    const [va, vb] = [literals(pa[name]!), pb[name] ? literals(pb[name]) : undefined];
    if (va && vb && !va.some((value) => vb.some((other) => JSON.stringify(other) === JSON.stringify(value)))) return false;
  }
  const forbidsOthers = (schema: Schema, other: Record<string, Schema>, own: Record<string, Schema>) =>
    schema.additionalProperties === false && Object.keys(other).some((name) => !Object.hasOwn(own, name));
  return !forbidsOthers(b, pa, pb) && !forbidsOthers(a, pb, pa);
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

/**
 * A $ref that reaches itself (a recursive schema) has no finite grammar here: refused, as a
 * reference to nothing is. Each definition is followed once (models referring to the same ones
 * made this take seconds). Returns every definition by name.
 */
function refuseRecursion(schema: Schema, field: string): Map<string, Schema> {
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

function unsupported(field: string, path: string, problem: string): LlmlbError {
  return new LlmlbError("INVALID_ARGUMENT", `${field}${path ? ` at ${path}` : ""}: ${problem}`, { field });
}
