import path from "node:path";
import { LlmlbError } from "./llmlb-error.js";

/** A model listed with the rerank capability whose GGUF has no ranking head. */
export function noRankingHead(id: string): LlmlbError {
  return new LlmlbError(
    "INVALID_MODEL_FILE",
    `model "${id}" is listed with the rerank capability, but its GGUF has no ranking head (a cls.weight or cls.output.weight tensor, as llama.cpp's reranker converters write it); use a reranker GGUF such as bge-reranker-v2-m3, jina-reranker-v1-tiny-en or Qwen3-Reranker, or take "rerank" out of the entry's capabilities`,
    { model_id: id },
  );
}

/** A file's name as its repository names it: a download is validated as <name>.part in .partial/, before it is installed under its name. */
export function repositoryFileName(file: string): string {
  return path.basename(file).replace(/\.part$/, "");
}

/** A file given as a model whose GGUF header says it is a LoRA adapter (general.type "adapter"). */
export function loraAdapterNotModel(file: string, architecture: string | undefined): LlmlbError {
  const name = repositoryFileName(file);
  const base = architecture ? `a ${architecture} model` : "the model it was trained for";
  return new LlmlbError(
    "INVALID_MODEL_FILE",
    `${name} is a LoRA adapter (general.type = "adapter"), not a model, so it cannot be loaded on its own. Use it as an adapter of ${base}: ` +
      `fetch it with llmlb-node pull --adapter hf:<org>/<repo>/${name} (Resolve with adapter_ref) and name it in adapter_ids ("adapters" over HTTP); ` +
      `see "LoRA adapters" in the README. To serve a model from the same repository, register it with the model file as filename`,
    { path: file, field: "general.type", value: "adapter" },
  );
}

export function readOnlyCopy(id: string, path: string): LlmlbError {
  return new LlmlbError(
    "READ_ONLY_COPY",
    `${id} has no copy in this node's store: it is used in place from ${path}, in an extra model directory (LLMLB_EXTRA_MODEL_DIRS), where the node never deletes anything; remove the file yourself, or take its directory out of LLMLB_EXTRA_MODEL_DIRS`,
    { model_id: id, path },
  );
}

/** An id that is neither in supported_models.json nor registered. */
export function modelNotSupported(id: string): LlmlbError {
  return new LlmlbError(
    "MODEL_NOT_SUPPORTED",
    `model ${id} is neither in supported_models.json nor registered; list models with ListModels (GET /v0/models) or register it with RegisterModel (POST /v0/models/register, llmlb-node register)`,
    { model_id: id },
  );
}

/** A catalog model in a format or for an engine this node cannot run (state UNSUPPORTED). */
export function modelUnsupported(id: string, reason: string): LlmlbError {
  return new LlmlbError("MODEL_UNSUPPORTED", `model ${id} is listed but this node cannot run it: ${reason}`, { model_id: id });
}

/** A request the model cannot serve (embeddings of a chat model, rerank of an embedder). */
export function capabilityMissing(id: string, capability: string, capabilities: readonly string[]): LlmlbError {
  return new LlmlbError("CAPABILITY_MISSING", `model "${id}" does not support ${capability} (its capabilities: ${capabilities.join(", ") || "none"})`, { model_id: id, capability });
}

/** A catalog model whose files are not on this node, asked for without waiting for a download. */
export function modelNotReady(id: string, why: "no-wait" | "no-resolver"): LlmlbError {
  return new LlmlbError(
    "MODEL_NOT_READY",
    why === "no-wait"
      ? `model "${id}" is not on this node yet and the request asked not to wait for its download (no_wait; wait_for_model: false on /v1); pull it first, or send the request again allowing the wait`
      : `model "${id}" is not on this node and no resolver is configured to download it`,
    { model_id: id },
  );
}

/** An adapter id with no adapter on this node. */
export function adapterNotFound(id: string): LlmlbError {
  return new LlmlbError("ADAPTER_NOT_FOUND", `no adapter "${id}" on this node; list adapters with ListAdapters`, { adapter_id: id });
}

/**
 * Tools sent to a model whose Jinja chat template has no tool-call syntax: node-llama-cpp would
 * show them in a generic syntax the model never learned, so they are refused rather than guessed.
 */
export function toolsUnsupported(id: string): LlmlbError {
  return new LlmlbError(
    "TOOLS_UNSUPPORTED",
    `model "${id}" cannot use tools: its chat template has no tool-call syntax (it never renders "tools" or tool calls). Send the request without tools (or with tool_choice "none"), or register the model with a chat_template that renders tools, such as its original one`,
    { model_id: id, field: "tools" },
  );
}

/**
 * A finished tool call whose arguments node-llama-cpp's own check rejects although its grammar let
 * them through (that grammar lets a number carry an exponent, so an "integer" can come out as 5e-3).
 */
export function invalidModelOutput(problem: string): LlmlbError {
  return new LlmlbError(
    "INVALID_MODEL_OUTPUT",
    `the model's tool call does not match the function's parameters (${problem}), although the grammar allowed it: node-llama-cpp's grammar is looser than its own check (it lets an "integer" carry an exponent, such as 5e-3). Retry the request (another seed or a lower temperature), or declare such a field as "number"`,
  );
}
