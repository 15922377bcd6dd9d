import path from "node:path";
import type { GgufFileInfo } from "node-llama-cpp";
import { importLlamaCpp } from "./llama-cpp.js";
import { LlmlbError, loraAdapterNotModel, repositoryFileName } from "../errors/index.js";
import type { ArtifactKind } from "../store/artifact-kind.js";
import { checkAdapterHeader, checkModelHyperparameters } from "./gguf-limits.js";
import { GgufFormatError, readGgufStructure, type GgufStructure } from "./gguf-structure.js";
import { chatTemplateProblem } from "./chat-template-check.js";
import type { TemplateSandbox } from "./template-sandbox.js";

/** Checks run on the first part's metadata once its structure is known (the chat template check plugs in here). */
export type MetadataCheck = (structure: GgufStructure, path: string) => Promise<void>;

const SHARD = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;

/** The parts of a sharded GGUF named like "x-00001-of-00003.gguf", or just the file. */
export function ggufParts(first: string): string[] {
  const match = SHARD.exec(path.basename(first));
  if (!match || Number(match[2]) !== 1) return [first];
  const count = Number(match[3]);
  const width = match[2]!.length;
  return Array.from({ length: count }, (_, i) =>
    path.join(path.dirname(first), `${match[1]}-${String(i + 1).padStart(width, "0")}-of-${match[3]}.gguf`),
  );
}

/**
 * The one GGUF validation of the node, run on every file before it becomes READY and before every
 * load. Each part's structure is read with bounds (gguf-structure.ts), then the first part's
 * hyperparameters are held to the bundled llama.cpp's limits (gguf-limits.ts) — the file never
 * reaches native code unless it passes. Throws FAILED_PRECONDITION / INVALID_MODEL_FILE naming the
 * field and the value found.
 */
export async function validateGgufFiles(files: readonly string[], kind: ArtifactKind = "model", extra?: MetadataCheck): Promise<void> {
  for (const [i, file] of files.entries()) {
    let structure: GgufStructure;
    try {
      structure = await readGgufStructure(file);
      if (i === 0) {
        if (kind === "model") {
          refuseAdapter(structure, file);
          checkModelHyperparameters(structure.metadata);
        }
        else checkAdapterHeader(structure.metadata);
      }
    } catch (err) {
      if (err instanceof GgufFormatError) throw invalidModelFile(file, err.message, { field: err.field, value: err.value });
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new LlmlbError("FILE_NOT_FOUND", `${file} does not exist`, { path: file });
      throw err;
    }
    if (i === 0 && extra) await extra(structure, file);
  }
}

/** A LoRA adapter given as a model would fail the hyperparameter checks with advice to download it again, which cannot help. */
function refuseAdapter(structure: GgufStructure, file: string): void {
  const type = structure.metadata.get("general.type");
  if (type?.kind !== "scalar" || type.value !== "adapter") return;
  const arch = structure.metadata.get("general.architecture");
  throw loraAdapterNotModel(file, arch?.kind === "scalar" && typeof arch.value === "string" ? arch.value : undefined);
}

/** Validates a file (and its other parts) and returns node-llama-cpp's reading of it, which is safe only after validation. */
export async function checkGgufFile(file: string, kind: ArtifactKind = "model", extra?: MetadataCheck): Promise<GgufFileInfo> {
  await validateGgufFiles(kind === "model" ? ggufParts(file) : [file], kind, extra);
  try {
    return await (await importLlamaCpp()).readGgufFileInfo(file, { readTensorInfo: true, logWarnings: false, sourceType: "filesystem" });
  } catch (err) {
    throw invalidModelFile(file, `its GGUF header cannot be read (${err instanceof Error ? err.message : String(err)})`, {}, err);
  }
}

/**
 * Refuses a GGUF whose embedded chat template exceeds the render bounds (a template bomb). Syntax
 * the Jinja renderer does not know is left to node-llama-cpp, which may match a built-in wrapper.
 */
export function embeddedTemplateCheck(sandbox: TemplateSandbox): MetadataCheck {
  return async (structure, file) => {
    const value = structure.metadata.get("tokenizer.chat_template");
    if (value?.kind !== "scalar" || typeof value.value !== "string") return;
    const problem = await chatTemplateProblem(sandbox, value.value, false);
    if (problem) {
      throw invalidModelFile(file, `its chat template (tokenizer.chat_template) cannot be rendered within bounds: ${problem.message}`, {
        field: "tokenizer.chat_template", value: problem.kind,
      });
    }
  };
}

export function invalidModelFile(file: string, problem: string, fields: Record<string, string> = {}, cause?: unknown): LlmlbError {
  // A download (validated as <name>.part): fetching the same file again gives the same bytes (they
  // matched the source's size and sha256).
  const downloaded = /\.part$/.test(file);
  const message = downloaded
    ? `${repositoryFileName(file)}, as its source serves it, is not a usable GGUF file: ${problem}. The download was discarded; ` +
      "fetching it again gives the same file: choose another file of the repository (filename) or another source"
    : `${file} is not a usable GGUF file: ${problem}. It was not loaded; replace the file (delete it and download it again).`;
  return new LlmlbError("INVALID_MODEL_FILE", message, { path: file, ...fields }, { cause });
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
