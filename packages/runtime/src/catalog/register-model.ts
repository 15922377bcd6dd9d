import { MAX_CONTEXT_LENGTH, MIN_CONTEXT_LENGTH } from "../config/parse.js";
import { LlmlbError } from "../errors/index.js";
import type { RegisterModelRequest } from "../gen/llmlb/node/v1/catalog_pb.js";
import { MAX_ID_LENGTH, validateModelId } from "../store/model-id.js";
import { baseName, groupGgufFiles, groupOf, isGguf, isLoraAdapterName, isServableModel, pickDefault, quantizationOf, shardParts, shardSequenceProblem, type GgufModelFiles } from "./gguf-files.js";
import type { HubClient, HubModelInfo } from "./hub-client.js";
import type { ModelEntry } from "./model-entry.js";
import { capabilityFromProto } from "./model-proto.js";
import { isRepoFilePath, parseRepoRef } from "./repo-ref.js";

/** The fields of a RegisterModel request the catalog reads. */
export type RegisterInput = Pick<RegisterModelRequest, "repo" | "filename" | "displayName" | "id" | "chatTemplate" | "description" | "tags" | "revision" | "contextLength" | "capabilities">;

/** What a registration will store, with what the caller should know. */
export interface RegistrationPlan {
  entry: ModelEntry;
  warnings: string[];
  /** GGUF files the repo offers (when the Hub answered). */
  availableFiles: string[];
}

/** What a model does, by its repo's Hub pipeline_tag, when the registration does not say. */
const CAPABILITY_OF_PIPELINE = new Map<string, ModelEntry["capabilities"][number]>([
  ["feature-extraction", "embeddings"],
  ["sentence-similarity", "embeddings"],
  ["text-ranking", "rerank"],
]);

/**
 * Turns a RegisterModel request into a catalog entry. Metadata only: asks the Hub's model API
 * (short timeout) for the repo's files, sizes and sha256; picks a default quantization when no
 * file is named; registers with warnings when the Hub does not answer, unless no file was named.
 */
export async function planRegistration(input: RegisterInput, hub: HubClient, signal?: AbortSignal): Promise<RegistrationPlan> {
  const ref = parseRepoRef(input.repo, hub.endpointUrl);
  const fileFromUrl = ref.filename;
  const fileGiven = input.filename.trim().replace(/^\/+/, "");
  if (fileFromUrl && fileGiven && fileFromUrl !== fileGiven) {
    throw new LlmlbError("INVALID_ARGUMENT", `the URL names ${fileFromUrl} but filename says ${fileGiven}; give one of them`, { repo: ref.repo });
  }
  const filename = fileGiven || fileFromUrl;
  if (filename && !isGguf(filename)) {
    throw new LlmlbError("INVALID_ARGUMENT", `filename ${JSON.stringify(filename)} is not a GGUF file (its name must end in .gguf)`, { repo: ref.repo, field: "filename" });
  }
  if (filename && !isRepoFilePath(filename)) {
    throw new LlmlbError("INVALID_ARGUMENT", `filename ${JSON.stringify(filename)} has a '.' or '..' segment, an empty one, a backslash or a NUL; give the file's path inside the repository (e.g. "sub/model-Q4_K_M.gguf")`, { repo: ref.repo, field: "filename" });
  }
  const revision = input.revision.trim() || ref.revision || undefined;
  if (input.contextLength !== 0 && (input.contextLength < MIN_CONTEXT_LENGTH || input.contextLength > MAX_CONTEXT_LENGTH)) {
    throw new LlmlbError("INVALID_ARGUMENT", `context_length ${input.contextLength} is out of range; give ${MIN_CONTEXT_LENGTH} to ${MAX_CONTEXT_LENGTH} tokens, or 0 for the node's LLMLB_CONTEXT_SIZE`, { field: "context_length" });
  }
  const explicitId = input.id.trim();
  if (explicitId) validateModelId(explicitId);
  const capabilities = input.capabilities.map((capability, i) => {
    const name = capabilityFromProto(capability);
    if (!name) throw new LlmlbError("INVALID_ARGUMENT", `capabilities[${i}] is not a capability this node serves; give text-generation, embeddings or rerank`, { field: `capabilities[${i}]` });
    return name;
  });

  const lookup = await hub.modelInfo(ref.repo, { blobs: true, ...(revision ? { revision } : {}), ...(signal ? { signal } : {}) });
  const warnings: string[] = [];
  let chosen: GgufModelFiles;
  let info: HubModelInfo | undefined;
  let availableFiles: string[] = [];
  if (lookup.ok) {
    info = lookup.info;
    const groups = groupGgufFiles(info.files);
    availableFiles = info.files.map((f) => f.path).filter(isGguf);
    if (groups.length === 0) {
      throw new LlmlbError("NO_GGUF_FILES", `${ref.repo} has no GGUF file to register (it may hold safetensors only; look for a -GGUF repository)`, { repo: ref.repo });
    }
    chosen = filename ? namedGroup(groups, filename, ref.repo, availableFiles) : defaultGroup(groups, ref.repo, warnings);
    if (filename && isLoraAdapterName(filename)) {
      warnings.push(`${filename}'s name says it is a LoRA adapter: if it is one, it will be refused when fetched; pull it with llmlb-node pull --adapter hf:${ref.repo}/${filename} and name it in adapter_ids instead`);
    }
    if (info.gated) {
      warnings.push(`${ref.repo} is gated: request access on ${hub.endpointUrl}/${ref.repo}, then set HF_TOKEN before downloading`);
    }
  } else {
    if (!filename) {
      throw new LlmlbError(
        "NO_GGUF_FILES",
        `Hugging Face (${hub.endpointUrl}) did not answer (${lookup.reason}), so the GGUF files of ${ref.repo} cannot be listed; give a filename to register it anyway`,
        { repo: ref.repo, hub: "unreachable" },
      );
    }
    chosen = offlineGroup(filename);
    warnings.push(`Hugging Face (${hub.endpointUrl}) did not answer (${lookup.reason}): size and sha256 of ${filename} are unknown until it is downloaded`);
  }

  const id = explicitId || deriveModelId(chosen.files[0]!);
  validateModelId(id);
  const quantization = chosen.quantization ?? quantizationOf(chosen.files[0]!);
  const parameterCount = info?.parameterCount;
  const entry: ModelEntry = {
    id,
    displayName: input.displayName.trim() || baseName(chosen.files[0]!).replace(shardSuffix, "").replace(/\.gguf$/i, ""),
    description: input.description.trim() || `Registered from ${ref.repo}`,
    repo: ref.repo,
    files: chosen.files,
    ...(revision ? { revision } : {}),
    ...(chosen.sha256 ? { sha256: chosen.sha256 } : {}),
    ...fileDigests(chosen.files, info),
    ...(chosen.sizeBytes !== undefined ? { sizeBytes: chosen.sizeBytes } : {}),
    tags: [...new Set(input.tags.map((t) => t.trim().toLowerCase()).filter((t) => t !== ""))],
    capabilities: capabilities.length > 0 ? [...new Set(capabilities)] : [CAPABILITY_OF_PIPELINE.get(info?.pipelineTag ?? "") ?? "text-generation"],
    ...(quantization ? { quantization } : {}),
    ...(parameterCount ? { parameterCount } : {}),
    format: "gguf",
    origin: "registered",
    ...(input.chatTemplate.trim() ? { chatTemplate: input.chatTemplate } : {}),
    ...(input.contextLength > 0 ? { contextLength: input.contextLength } : {}),
  };
  return { entry, warnings, availableFiles };
}

const shardSuffix = /-\d{5}-of-\d{5}(?=\.gguf$)/i;

/** The hub's lfs.sha256 of every chosen file, kept only when it knows all of them. */
function fileDigests(files: readonly string[], info: HubModelInfo | undefined): { fileSha256s?: string[] } {
  const digests = files.map((f) => info?.files.find((x) => x.path === f)?.sha256);
  return digests.every((d): d is string => d !== undefined) ? { fileSha256s: digests } : {};
}

/** A default id from the (first) file name: "Qwen2.5-0.5B-Instruct-Q4_K_M.gguf" → "qwen2.5-0.5b-instruct-q4_k_m". */
export function deriveModelId(file: string): string {
  const id = baseName(file)
    .replace(shardSuffix, "")
    .replace(/\.gguf$/i, "")
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/\.{2,}/g, ".")
    .replace(/^[^a-z0-9]+/, "")
    .slice(0, MAX_ID_LENGTH)
    .replace(/[^a-z0-9]+$/, "");
  return id || "model";
}

function namedGroup(groups: GgufModelFiles[], filename: string, repo: string, available: string[]): GgufModelFiles {
  const group = groupOf(groups, filename);
  if (!group) {
    const list = available.length > 10 ? `${available.slice(0, 10).join(", ")}, … (${available.length} in all)` : available.join(", ");
    throw new LlmlbError("FILE_NOT_FOUND", `${repo} has no file ${filename}; its GGUF files are: ${list}`, { repo, filename });
  }
  if (!group.complete) {
    throw new LlmlbError("FILE_NOT_FOUND", `${filename} is part of a sharded GGUF whose parts are not all in ${repo} (found ${group.files.join(", ")})`, { repo, filename });
  }
  return group;
}

function defaultGroup(groups: GgufModelFiles[], repo: string, warnings: string[]): GgufModelFiles {
  const chosen = pickDefault(groups);
  if (!chosen) {
    const adapters = groups.map((g) => g.files[0]!).filter(isLoraAdapterName);
    if (adapters.length > 0) throw onlyLoraAdapters(repo, adapters);
    throw new LlmlbError("NO_GGUF_FILES", `${repo} has no complete GGUF model file to register`, { repo });
  }
  const what = chosen.quantization ? `${chosen.quantization} (${chosen.files[0]})` : chosen.files[0];
  const parts = chosen.files.length > 1 ? ` with its ${chosen.files.length} parts` : "";
  const models = groups.filter(isServableModel).length;
  warnings.push(
    models > 1
      ? `no filename given: chose ${what}${parts} of the ${models} GGUF models in ${repo}; pass filename to pick another`
      : `no filename given: chose ${what}${parts}, the only GGUF model in ${repo}`,
  );
  return chosen;
}

/** A repo whose only GGUF files are LoRA adapters: they are pulled and applied to a model, not registered. */
function onlyLoraAdapters(repo: string, adapters: string[]): LlmlbError {
  const list = adapters.length > 5 ? `${adapters.slice(0, 5).join(", ")}, … (${adapters.length} in all)` : adapters.join(", ");
  return new LlmlbError(
    "NO_GGUF_FILES",
    `${repo} holds LoRA adapters (${list}), not a model to register. An adapter is applied to a model of its architecture: ` +
      `fetch it with llmlb-node pull --adapter hf:${repo}/${adapters[0]} (Resolve with adapter_ref) and name it in adapter_ids ("adapters" over HTTP); ` +
      `see "LoRA adapters" in the README. If one of these files is a whole model, pass it as filename`,
    { repo },
  );
}

/** Without the Hub: a single file, or every part when the name says it is a shard. */
function offlineGroup(filename: string): GgufModelFiles {
  const shard = shardParts(filename);
  if (!shard) return { files: [filename], complete: true };
  const dir = filename.includes("/") ? filename.slice(0, filename.lastIndexOf("/") + 1) : "";
  const base = shard.base.slice(dir.length);
  const width = String(shard.count).padStart(5, "0");
  const files = Array.from({ length: shard.count }, (_, i) => `${dir}${base}-${String(i + 1).padStart(5, "0")}-of-${width}.gguf`);
  if (shardSequenceProblem(files)) return { files: [filename], complete: true };
  return { files, complete: true };
}
