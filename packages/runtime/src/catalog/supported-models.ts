import fs from "node:fs";
import { Ajv, type ErrorObject } from "ajv";
import schema from "../../../../supported_models.schema.json" with { type: "json" };
import { LlmlbError } from "../errors/index.js";
import type { ModelEntry } from "./model-entry.js";
import { shardParts, shardSequenceProblem } from "./gguf-files.js";

/** One entry of supported_models.json as written (snake_case). */
export interface SupportedModelRecord {
  id: string;
  name: string;
  description: string;
  repo: string;
  recommended_filename: string | string[];
  size_bytes: number;
  required_memory_bytes: number;
  tags: string[];
  capabilities: Array<"text-generation" | "embeddings">;
  quantization: string;
  parameter_count: number;
  format: "gguf";
  sha256?: string;
  revision?: string;
  chat_template?: string;
}

export interface SupportedModelsFile {
  $schema?: string;
  models: SupportedModelRecord[];
}

const validate = new Ajv({ allErrors: true, strict: false }).compile<SupportedModelsFile>(schema);

/** What each field must look like, in words (used instead of raw schema messages). */
const EXPECTED: Record<string, string> = {
  id: "lower-case letters, digits, '.', '-', '_' and at most one '/' (at most 128 characters)",
  name: "a non-empty string",
  description: "a string",
  repo: 'a Hugging Face repository "org/name"',
  recommended_filename: "a .gguf file name, or the list of parts of a sharded GGUF (at least 2)",
  size_bytes: "a positive integer (bytes)",
  required_memory_bytes: "a positive integer (bytes)",
  tags: "a list of distinct lower-case tags",
  capabilities: 'a non-empty list of "text-generation" and/or "embeddings"',
  quantization: "a quantization name such as Q4_K_M",
  parameter_count: "a positive integer",
  format: '"gguf"',
  sha256: "64 lower-case hex digits",
  revision: "a non-empty branch, tag or commit",
  chat_template: "a string",
  models: "a list of model entries",
};

/**
 * Reads and validates a supported-models file. A missing file is an empty list when `optional`
 * (the built-in default path); anything invalid throws one INVALID_CONFIG error naming the file,
 * the entry (index and id), the field and what was expected.
 */
export function loadSupportedModels(file: string, options: { optional?: boolean } = {}): ModelEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && options.optional) return [];
    throw new LlmlbError("INVALID_CONFIG", `cannot read supported models file ${file}: ${(err as Error).message}`, { file });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new LlmlbError("INVALID_CONFIG", `supported models file ${file} is not valid JSON: ${(err as Error).message}`, { file });
  }
  return parseSupportedModels(data, file);
}

/** Validates parsed JSON (schema, shard naming, duplicate ids) and converts it to catalog entries. */
export function parseSupportedModels(data: unknown, file: string): ModelEntry[] {
  const problems = validate(data) ? semanticProblems(data) : schemaProblems(validate.errors ?? [], data);
  if (problems.length > 0) {
    throw new LlmlbError("INVALID_CONFIG", `invalid supported models file ${file}: ${problems.join("; ")}`, { file });
  }
  return (data as SupportedModelsFile).models.map(toEntry);
}

export function toEntry(record: SupportedModelRecord): ModelEntry {
  const files = typeof record.recommended_filename === "string" ? [record.recommended_filename] : [...record.recommended_filename];
  return {
    id: record.id,
    displayName: record.name,
    description: record.description,
    repo: record.repo,
    files,
    ...(record.revision !== undefined ? { revision: record.revision } : {}),
    ...(record.sha256 !== undefined ? { sha256: record.sha256 } : {}),
    sizeBytes: record.size_bytes,
    requiredMemoryBytes: record.required_memory_bytes,
    tags: [...record.tags],
    capabilities: [...record.capabilities],
    quantization: record.quantization,
    parameterCount: record.parameter_count,
    format: "gguf",
    origin: "supported",
    ...(record.chat_template !== undefined ? { chatTemplate: record.chat_template } : {}),
  };
}

/** Checks the schema cannot express: shard sequences and unique ids. */
function semanticProblems(data: SupportedModelsFile): string[] {
  const problems: string[] = [];
  const firstIndex = new Map<string, number>();
  data.models.forEach((model, index) => {
    const where = entryLabel(index, model.id);
    const files = model.recommended_filename;
    if (typeof files === "string") {
      const part = shardParts(files);
      if (part) {
        problems.push(`${where}: field "recommended_filename" names part ${part.index} of ${part.count} of a sharded GGUF; expected the list of all ${part.count} parts`);
      }
    } else {
      const wrong = shardSequenceProblem(files);
      if (wrong) problems.push(`${where}: field "recommended_filename" ${wrong}`);
    }
    const seen = firstIndex.get(model.id);
    if (seen !== undefined) problems.push(`${where}: field "id" duplicates entry #${seen}; expected ids to be unique`);
    else firstIndex.set(model.id, index);
  });
  return problems;
}

function schemaProblems(errors: ErrorObject[], data: unknown): string[] {
  const byWhere = new Map<string, string>();
  for (const error of errors) {
    const { where, field } = locate(error, data);
    const key = `${where}\u0000${field ?? ""}`;
    if (byWhere.has(key)) continue;
    byWhere.set(key, describe(error, where, field, data));
  }
  return [...byWhere.values()];
}

/** Splits an ajv error into the entry it is about and the field inside that entry. */
function locate(error: ErrorObject, data: unknown): { where: string; field?: string } {
  const segments = error.instancePath.split("/").slice(1);
  const missing = error.keyword === "required" ? (error.params as { missingProperty: string }).missingProperty : undefined;
  const unknown = error.keyword === "additionalProperties" ? (error.params as { additionalProperty: string }).additionalProperty : undefined;
  if (segments[0] !== "models" || segments.length < 2) {
    return { where: "(top level)", ...(missing ?? unknown ?? segments[0] ? { field: missing ?? unknown ?? segments[0] } : {}) };
  }
  const index = Number(segments[1]);
  const models = (data as { models?: unknown[] }).models;
  const id = (models?.[index] as { id?: unknown } | undefined)?.id;
  const field = segments[2] ?? missing ?? unknown;
  return { where: entryLabel(index, typeof id === "string" ? id : undefined), ...(field ? { field } : {}) };
}

function describe(error: ErrorObject, where: string, field: string | undefined, data: unknown): string {
  if (error.keyword === "required") return `${where}: field "${field}" is missing; expected ${EXPECTED[field ?? ""] ?? "a value"}`;
  if (error.keyword === "additionalProperties") return `${where}: unknown field "${field}"`;
  const got = shown(valueAt(data, error.instancePath));
  if (!field) {
    const what = where === "(top level)" ? '{"$schema": "./supported_models.schema.json", "models": [ … ]}' : "a model entry (an object)";
    return `${where}: is ${got}; expected ${what}`;
  }
  return `${where}: field "${field}" is ${got}; expected ${EXPECTED[field] ?? error.message ?? "a valid value"}`;
}

function entryLabel(index: number, id: string | undefined): string {
  return id ? `entry #${index} (id "${id}")` : `entry #${index}`;
}

function valueAt(data: unknown, pointer: string): unknown {
  let value = data;
  for (const segment of pointer.split("/").slice(1, 4)) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? "undefined";
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
