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
  /** This node's spelling or the router's ("TextGeneration", "Embedding", …); empty means text generation. */
  capabilities: string[];
  quantization?: string | number | null;
  /** A number, or the router's text ("7B", "30B A3B"). */
  parameter_count?: string | number | null;
  format?: string;
  engine?: string;
  platforms?: string[];
  artifacts?: Array<{ name: string; path?: string; url?: string; repo?: string; priority?: number; runtimes?: string[] }>;
  sha256?: string;
  revision?: string;
  chat_template?: string;
  context_length?: number;
}

/** This node's form (`{"models": [...]}`) or the llmlb router's (a bare array). */
export type SupportedModelsFile = { $schema?: string; models: SupportedModelRecord[] } | SupportedModelRecord[];

const validate = new Ajv({ allErrors: true, strict: false }).compile<SupportedModelsFile>(schema);

/** Capability spellings (ours, the router's PascalCase, its snake_case) this node serves. */
const CAPABILITY_OF: Record<string, ModelEntry["capabilities"][number]> = {
  "text-generation": "text-generation",
  TextGeneration: "text-generation",
  text_generation: "text-generation",
  embeddings: "embeddings",
  Embedding: "embeddings",
  embedding: "embeddings",
  rerank: "rerank",
};

function recordsOf(data: SupportedModelsFile): SupportedModelRecord[] {
  return Array.isArray(data) ? data : data.models;
}

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
  capabilities: 'a list of "text-generation", "embeddings" and/or "rerank" (or the router\'s "TextGeneration", "Embedding", …)',
  quantization: "a quantization name such as Q4_K_M, or null",
  parameter_count: 'a positive number or a text such as "7B", or null',
  format: 'a format name such as "gguf"',
  engine: 'an engine name such as "llama_cpp"',
  platforms: "a list of platform names",
  artifacts: "a list of {name, path?, url?, repo?, priority?, runtimes?}",
  sha256: "64 lower-case hex digits",
  revision: "a non-empty branch, tag or commit",
  chat_template: "a string",
  context_length: "a whole number of tokens from 256 to 16777216",
  models: "a list of model entries",
};

/** Why this node cannot run an entry, or undefined when it can. */
function unsupportedReason(record: SupportedModelRecord, capabilities: ModelEntry["capabilities"]): string | undefined {
  const format = record.format ?? "gguf";
  const engine = record.engine ?? "llama_cpp";
  if (format !== "gguf") return `format "${format}" is not supported by this node (it runs GGUF files with llama.cpp)`;
  if (engine !== "llama_cpp") return `engine "${engine}" is not supported by this node (it runs GGUF files with llama.cpp)`;
  if (capabilities.length === 0) {
    return `capabilities ${record.capabilities.join(", ")} are not served by this node (it serves text generation, embeddings and rerank)`;
  }
  return undefined;
}

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
  return recordsOf(data as SupportedModelsFile).map(toEntry);
}

export function toEntry(record: SupportedModelRecord): ModelEntry {
  const files = typeof record.recommended_filename === "string" ? [record.recommended_filename] : [...record.recommended_filename];
  const capabilities =
    record.capabilities.length === 0
      ? (["text-generation"] as ModelEntry["capabilities"])
      : [...new Set(record.capabilities.map((c) => CAPABILITY_OF[c]).filter((c) => c !== undefined))];
  const reason = unsupportedReason(record, capabilities);
  const count = record.parameter_count;
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
    capabilities,
    ...(record.quantization !== undefined && record.quantization !== null ? { quantization: String(record.quantization) } : {}),
    ...(typeof count === "number" && Number.isSafeInteger(count) ? { parameterCount: count } : {}),
    ...(count !== undefined && count !== null ? { parameterCountText: String(count) } : {}),
    format: record.format ?? "gguf",
    ...(record.engine !== undefined ? { engine: record.engine } : {}),
    ...(record.platforms !== undefined ? { platforms: [...record.platforms] } : {}),
    ...(reason !== undefined ? { unsupportedReason: reason } : {}),
    origin: "supported",
    ...(record.chat_template !== undefined ? { chatTemplate: record.chat_template } : {}),
    ...(record.context_length !== undefined ? { contextLength: record.context_length } : {}),
  };
}

/** Checks the schema cannot express: shard sequences and unique ids. */
function semanticProblems(data: SupportedModelsFile): string[] {
  const problems: string[] = [];
  const firstIndex = new Map<string, number>();
  recordsOf(data).forEach((model, index) => {
    const where = entryLabel(index, model.id);
    const files = model.recommended_filename;
    const runnable = (model.format ?? "gguf") === "gguf" && (model.engine ?? "llama_cpp") === "llama_cpp";
    if (runnable && typeof files === "string" && !files.endsWith(".gguf")) {
      problems.push(`${where}: field "recommended_filename" is ${shown(files)}; expected ${EXPECTED.recommended_filename} (or a "format" other than gguf)`);
    } else if (typeof files === "string") {
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

function schemaProblems(rawErrors: ErrorObject[], rawData: unknown): string[] {
  // The router's bare array reads as our {"models": [...]}: "/3/size_bytes" is "/models/3/size_bytes".
  const bare = Array.isArray(rawData);
  const data = bare ? { models: rawData } : rawData;
  const errors = bare ? rawErrors.map((e) => ({ ...e, instancePath: `/models${e.instancePath}` })) : rawErrors;
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
    const what = where === "(top level)" ? '{"$schema": "./supported_models.schema.json", "models": [ … ]} or a bare array of entries (the llmlb router\'s form)' : "a model entry (an object)";
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
