import { stat } from "node:fs/promises";
import type { GgufFileInfo } from "node-llama-cpp";
import { importLlamaCpp } from "./llama-cpp.js";
import { LlmlbError } from "../errors/index.js";
import type { ArtifactKind } from "../store/artifact-kind.js";
import { tensorByteSize } from "./ggml-type-sizes.js";

/** Architectures without attention/feed-forward hyperparameters (state-space and RWKV models). */
const RECURRENT_ARCHITECTURES = new Set(["mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"]);

/**
 * Reads and checks a GGUF file before llama.cpp sees it. llama.cpp aborts the whole process on
 * some malformed files (a missing or zero `<arch>.feed_forward_length` or `attention.head_count`
 * fails a GGML_ASSERT), so every file is checked here first: the header parses, required
 * hyperparameters are present and positive, and every tensor's data lies inside the file.
 * Throws FAILED_PRECONDITION / INVALID_MODEL_FILE saying what is wrong.
 */
export async function checkGgufFile(path: string, kind: ArtifactKind = "model"): Promise<GgufFileInfo> {
  let info: GgufFileInfo;
  try {
    info = await (await importLlamaCpp()).readGgufFileInfo(path, { readTensorInfo: true, logWarnings: false, sourceType: "filesystem" });
  } catch (err) {
    throw invalid(path, `its GGUF header cannot be read (${err instanceof Error ? err.message : String(err)})`, err);
  }
  const problems = kind === "model" ? missingModelKeys(info) : missingAdapterKeys(info);
  problems.push(...(await truncatedParts(info)));
  if (problems.length > 0) throw invalid(path, problems.join("; "));
  return info;
}

function invalid(path: string, problem: string, cause?: unknown): LlmlbError {
  return new LlmlbError(
    "INVALID_MODEL_FILE",
    `${path} is not a usable GGUF file: ${problem}. It was not loaded; replace the file (delete it and download it again).`,
    { path },
    { cause },
  );
}

function missingModelKeys(info: GgufFileInfo): string[] {
  const arch = valueAt(info.metadata, "general.architecture");
  if (typeof arch !== "string" || arch === "") return ["general.architecture is missing"];
  const required = [`${arch}.context_length`, `${arch}.embedding_length`, `${arch}.block_count`];
  if (!RECURRENT_ARCHITECTURES.has(arch)) required.push(`${arch}.feed_forward_length`, `${arch}.attention.head_count`);
  const problems = required.filter((key) => !isPositive(valueAt(info.metadata, key))).map((key) => `${key} is missing or not positive`);
  if (typeof valueAt(info.metadata, "tokenizer.ggml.model") !== "string") problems.push("tokenizer.ggml.model is missing");
  return problems;
}

function missingAdapterKeys(info: GgufFileInfo): string[] {
  const problems: string[] = [];
  if (valueAt(info.metadata, "general.type") !== "adapter") problems.push('general.type is not "adapter"');
  if (typeof valueAt(info.metadata, "general.architecture") !== "string") problems.push("general.architecture is missing");
  return problems;
}

/** Per file part: where its last tensor's data ends versus the part's length on disk. */
async function truncatedParts(info: GgufFileInfo): Promise<string[]> {
  const ends = new Map<number, number>([[1, info.infoEndOffset ?? 0]]);
  for (const tensor of info.fullTensorInfo ?? []) {
    const start = Number(tensor.fileOffset);
    const end = start + (tensorByteSize(tensor.ggmlType, tensor.dimensions) ?? 0);
    ends.set(tensor.filePart, Math.max(ends.get(tensor.filePart) ?? 0, end));
  }
  const problems: string[] = [];
  for (const [part, end] of ends) {
    const source = info.sourceData[part - 1];
    if (source?.type !== "path") continue;
    const { size } = await stat(source.path);
    if (size < end) problems.push(`the file is truncated (${source.path} has ${size} bytes, its tensors need ${end})`);
  }
  return problems;
}

function isPositive(value: unknown): boolean {
  if (typeof value === "number" || typeof value === "bigint") return value > 0;
  // Per-layer arrays (e.g. hybrid models) may hold zeros for some layers, but not only zeros.
  if (Array.isArray(value)) return value.some((v) => isPositive(v));
  return false;
}

/** A dotted key ("llama.attention.head_count") in node-llama-cpp's nested metadata object. */
export function valueAt(metadata: object, key: string): unknown {
  let node: unknown = metadata;
  for (const part of key.split(".")) {
    if (node === null || typeof node !== "object" || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}
