import type { GbnfJsonSchema } from "node-llama-cpp";
import { convert, refuseRecursion } from "./json-schema-check.js";
import { commonTypes, mapSchemas, typeOfValue, typesOf, unsupported, type Schema } from "./json-schema-common.js";
import type { JsonSchema } from "./types.js";

/** The keywords that apply to one type: what each alternative of a `type` list keeps. */
const KEYWORDS_OF_TYPE: Readonly<Record<string, readonly string[]>> = {
  string: ["minLength", "maxLength", "format"],
  object: ["properties", "additionalProperties", "minProperties", "maxProperties", "required"],
  array: ["items", "prefixItems", "minItems", "maxItems"],
};

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

/** Whether a schema bounds a string's length anywhere (a property named maxLength counts too: the answer errs toward yes). */
export function mentionsMaxLength(schema: unknown): boolean {
  return typeof schema === "object" && schema !== null && Object.entries(schema).some(([key, value]) => key === "maxLength" || mentionsMaxLength(value));
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

function pick(schema: Schema, keywords: readonly string[]): Schema {
  return Object.fromEntries(keywords.filter((keyword) => keyword in schema).map((keyword) => [keyword, schema[keyword]]));
}

