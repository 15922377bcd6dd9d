import { setTimeout as delay } from "node:timers/promises";
import type { Llama, Token } from "node-llama-cpp";
import { requireCapability, type ModelEntry } from "../catalog/model-entry.js";
import { LlmlbError } from "../errors/index.js";
import { linkedSignal } from "../events/linked-signal.js";
import { ModelEvents } from "../events/model-events.js";
import { silentLogger, type Logger } from "../logging/index.js";
import { NO_ADAPTERS, adapterSetKey, type AdapterSet } from "./adapter-set.js";
import { deltaStream } from "./delta-stream.js";
import { refuseBeyondContext } from "./bounded-tokens.js";
import {
  countTokens,
  generateChat,
  generateCompletion,
  type GenerationOutcome,
  type GenerationSink,
  type GenerationTarget,
} from "./generate.js";
import { checkGgufFile, valueAt } from "./gguf-check.js";
import { backendOf, loadLlama, resolveThreads, type GpuBackend } from "./llama-backend.js";
import type { LoadedModel } from "./loaded-model.js";
import { resolveMemoryBudget } from "./memory-budget.js";
import { ModelPool, raceAbort } from "./model-pool.js";
import { ProcessedTokens } from "./processed-tokens.js";
import {
  validateChatInput,
  validateCompletionInput,
  validateDetokenizeInput,
  validateEmbedInput,
  validateRerankInput,
  validateTarget,
  validateTokenizeInput,
  promptTexts,
  type UncheckedChatInput,
} from "./request-validation.js";
import { renderBound, type RenderShape } from "./template-cost.js";
import type { TemplateSandbox } from "./template-sandbox.js";
import type {
  AdapterLocator,
  ChatInput,
  CompletionInput,
  DetokenizeInput,
  EmbedInput,
  EmbedResult,
  EngineSettings,
  GenerationEvent,
  LoadedModelInfo,
  ModelLocator,
  ModelTarget,
  RequestOptions,
  RerankInput,
  RerankResult,
  TokenizeInput,
  TokenUsage,
} from "./types.js";

export interface AcceleratorInfo {
  backend: GpuBackend;
  devices: Array<{ name: string; totalBytes: number; usedBytes: number }>;
  totalBytes: number;
  usedBytes: number;
}

export interface InferenceEngineOptions {
  settings: EngineSettings;
  models: ModelLocator;
  adapters: AdapterLocator;
  events?: ModelEvents;
  logger?: Logger;
  /** A llama.cpp instance to use instead of loading one (shared by tests, embedders); not disposed at close. */
  llama?: Llama;
  /** Where a Jinja chat template is first rendered with each request's messages, within bounds. */
  templates?: TemplateSandbox;
  /** Told when loading llama.cpp starts and ends (it blocks this thread for a while: the runner's heartbeat allows for it). */
  onLlamaLoading?: (loading: boolean) => void;
}

type Capability = ModelEntry["capabilities"][number];

interface Holdings {
  add(release: () => void): void;
  release(): void;
}

const CLOSE_GRACE_MS = 5_000;

/**
 * Inference with node-llama-cpp: models located (and resolved) on demand, kept in a memory-bounded
 * LRU pool, requests admitted per model onto context sequences, generations streamed and stopped
 * when their caller goes away. llama.cpp itself is loaded on first use, so a node without models
 * starts fast.
 */
export class InferenceEngine {
  readonly memoryBudget: number;
  private readonly pool: ModelPool;
  private readonly events: ModelEvents;
  private readonly shutdown = new AbortController();
  private llamaPromise?: Promise<Llama>;
  private readonly checkedAdapters = new Map<string, Promise<void>>();
  private running = 0;
  private drained?: () => void;

  constructor(private readonly options: InferenceEngineOptions) {
    const { settings } = options;
    this.memoryBudget = resolveMemoryBudget(settings.memoryBudget);
    this.events = options.events ?? new ModelEvents();
    this.pool = new ModelPool({
      llama: () => this.llama(),
      budget: this.memoryBudget,
      parallelism: settings.parallelism,
      queueSize: settings.queueSize,
      threads: resolveThreads(settings.threads),
      contextSize: settings.contextSize,
      keepAliveMs: settings.keepAliveMs,
      events: this.events,
      logger: this.logger,
    });
  }

  private get logger(): Logger {
    return this.options.logger ?? silentLogger();
  }

  /** llama.cpp for the configured GPU and threads, loaded on first call (a failure is kept). */
  llama(): Promise<Llama> {
    const { llama } = this.options;
    this.llamaPromise ??= llama ? Promise.resolve(llama) : this.startLoadingLlama();
    return this.llamaPromise;
  }

  private startLoadingLlama(): Promise<Llama> {
    const { settings, onLlamaLoading } = this.options;
    onLlamaLoading?.(true);
    const loading = loadLlama(settings.gpu, settings.threads, this.logger);
    void loading.then(() => onLlamaLoading?.(false), () => onLlamaLoading?.(false));
    return loading;
  }

  /** Requests in flight (answering or waiting): chats, completions, embeddings, loads. */
  activeRequestCount(): number {
    return this.running;
  }

  /** The GPU devices llama.cpp computes on (none on the CPU backend) and their memory. */
  async accelerator(): Promise<AcceleratorInfo> {
    return acceleratorOf(await this.llama());
  }

  /** The same once llama.cpp is loaded (or loading); undefined before, and never loads it. */
  async loadedAccelerator(): Promise<AcceleratorInfo | undefined> {
    const llama = await this.llamaPromise?.catch(() => undefined);
    return llama ? acceleratorOf(llama) : undefined;
  }

  /** Streams a chat answer: deltas, then one end event with finish reason and usage. */
  chat(input: UncheckedChatInput, options: RequestOptions = {}): AsyncGenerator<GenerationEvent> {
    return this.generate(
      () => validateChatInput(input),
      options,
      async (model, target, checked) => {
        await this.renderWithinBounds(model, checked);
        return generateChat({ ...target, chatWrapper: model.chatWrapper }, checked);
      },
    );
  }

  /**
   * node-llama-cpp renders Jinja templates synchronously on this thread. Unless the render is
   * provably small (a template linear in its input, see template-cost.ts, whose worst case for this
   * request stays within the sandbox's output limit), the same template and messages are first
   * rendered in the template sandbox (a worker stopped at 100 ms), so a template that explodes on
   * some input refuses that request instead of blocking or killing the node.
   */
  private async renderWithinBounds(model: LoadedModel, input: ChatInput): Promise<void> {
    const { templates } = this.options;
    if (!templates || model.jinjaTemplate === undefined) return;
    if (model.templateCost && renderBound(model.jinjaTemplate, model.templateCost, renderShape(input)) <= templates.limits.maxOutputChars) return;
    const messages = input.messages.map((m) => ({ role: m.role, content: m.content }));
    const outcome = await templates.render(model.jinjaTemplate, { messages, add_generation_prompt: true, bos_token: "", eos_token: "" });
    if (outcome.ok || outcome.kind === "parse" || outcome.kind === "error") return;
    throw new LlmlbError(
      "INVALID_CHAT_TEMPLATE",
      `the chat template of model "${model.id}" cannot render this conversation within bounds (${outcome.message}); nothing was generated. Fix the template or register the model without one`,
      { model_id: model.id, problem: outcome.kind },
    );
  }

  /** Streams a raw text completion like `chat`. */
  complete(input: CompletionInput, options: RequestOptions = {}): AsyncGenerator<GenerationEvent> {
    return this.generate(
      () => validateCompletionInput(input),
      options,
      (_model, target, checked) => generateCompletion(target, checked),
    );
  }

  /** One embedding per input, for models whose catalog entry lists the "embeddings" capability. */
  async embed(input: Omit<EmbedInput, "adapterIds">, options: RequestOptions = {}): Promise<EmbedResult> {
    const checked = validateEmbedInput(input);
    const held = this.holdings();
    try {
      const signal = this.requestSignal(options, held);
      const model = await this.leaseModel(checked, signal, "embeddings");
      held.add(() => this.pool.release(model, checked.keepAliveMs));
      held.add(await model.admission.enter(signal));
      if (checked.dimensions !== undefined) requireDimensions(checked.dimensions, model.model.embeddingVectorSize);
      const context = await raceAbort(model.embeddingContext(), signal);
      const embeddings: number[][] = [];
      let promptTokens = 0;
      try {
        for (const [i, text] of checked.inputs.entries()) {
          signal.throwIfAborted();
          await refuseBeyondContext(model.model, [text], { contextSize: model.contextSize, kept: 1, field: `inputs[${i}]` }, signal);
          embeddings.push([...(await context.getEmbeddingFor(text)).vector]);
        }
      } finally {
        // Also when it stops part-way (an input too long, a cancel): the inputs embedded so far were processed.
        promptTokens = this.inputsProcessed(model, checked.inputs.slice(0, embeddings.length));
      }
      const shortened = checked.dimensions === undefined ? embeddings : embeddings.map((v) => shortenEmbedding(v, checked.dimensions!));
      return {
        embeddings: shortened,
        dimensions: shortened[0]?.length ?? 0,
        usage: { promptTokens, completionTokens: 0, totalTokens: promptTokens },
      };
    } finally {
      held.release();
    }
  }

  /** Documents scored against a query, best first, for models with the "rerank" capability. */
  async rerank(input: RerankInput, options: RequestOptions = {}): Promise<RerankResult> {
    const checked = validateRerankInput(input);
    const held = this.holdings();
    try {
      const signal = this.requestSignal(options, held);
      const model = await this.leaseModel(checked, signal, "rerank");
      held.add(() => this.pool.release(model, checked.keepAliveMs));
      held.add(await model.admission.enter(signal));
      const context = await raceAbort(model.rankingContext(), signal);
      const scores: number[] = [];
      let promptTokens = 0;
      try {
        for (const document of checked.documents) {
          signal.throwIfAborted();
          scores.push(await context.rank(checked.query, document, { onOverflow: "maxChunk" }));
        }
      } finally {
        // As usage counts them: the query once, and the documents scored so far.
        promptTokens = this.inputsProcessed(model, scores.length > 0 ? [checked.query, ...checked.documents.slice(0, scores.length)] : []);
      }
      const results = scores
        .map((relevanceScore, index) => ({ index, relevanceScore }))
        .sort((a, b) => b.relevanceScore - a.relevanceScore)
        .slice(0, checked.topN ?? scores.length);
      return { results, usage: { promptTokens, completionTokens: 0, totalTokens: promptTokens } };
    } finally {
      held.release();
    }
  }

  /** The model's tokens for a text (with the BOS a prompt starts with when `addSpecial`). */
  async tokenize(input: TokenizeInput, options: RequestOptions = {}): Promise<number[]> {
    const checked = validateTokenizeInput(input);
    return this.withModel(checked, options, (model) => {
      const tokens = model.model.tokenize(checked.content, false, checked.addSpecial ? "trimLeadingSpace" : undefined);
      const bos = model.model.tokens.shouldPrependBosToken ? model.model.tokens.bos : null;
      return checked.addSpecial && bos !== null ? [bos, ...tokens] : [...tokens];
    });
  }

  /** The text of a model's tokens; special tokens are written out (e.g. "<s>"). */
  async detokenize(input: DetokenizeInput, options: RequestOptions = {}): Promise<string> {
    const checked = validateDetokenizeInput(input);
    return this.withModel(checked, options, (model) => {
      const vocabulary = valueAt(model.model.fileInfo.metadata, "tokenizer.ggml.tokens");
      const size = Array.isArray(vocabulary) ? vocabulary.length : 0;
      checked.tokens.forEach((token, i) => {
        if (token >= size) {
          throw new LlmlbError("INVALID_ARGUMENT", `tokens[${i}] is ${token}; model "${model.id}" has token ids 0 to ${size - 1}`, { field: `tokens[${i}]` });
        }
      });
      return model.model.detokenize(checked.tokens as Token[], true);
    });
  }

  /** Loads a model ahead of requests, with the context its requests use (an adapter set's for a generator). */
  async load(target: ModelTarget, options: RequestOptions = {}): Promise<LoadedModelInfo> {
    validateTarget(target);
    const held = this.holdings();
    let model: LoadedModel;
    try {
      const signal = this.requestSignal(options, held);
      model = await this.leaseModel(target, signal);
      const leased = model;
      let served = false;
      // A refused load (an adapter that does not fit) leaves the model's keep-alive as it was.
      held.add(() => this.pool.release(leased, served ? target.keepAliveMs : leased.keepAliveMs));
      await raceAbort(this.servingContext(model, target, signal), signal);
      served = true;
    } finally {
      held.release();
    }
    // Once the lease is given back, so the answer says when the model will expire.
    return model.info();
  }

  /** The context a model's requests run in: an embedder's or a reranker's own, else the generation context of the adapter set. */
  private async servingContext(model: LoadedModel, target: ModelTarget, signal: AbortSignal): Promise<unknown> {
    const capabilities = model.entry.capabilities;
    if (!capabilities.includes("text-generation")) {
      if (capabilities.includes("embeddings")) return model.embeddingContext();
      if (capabilities.includes("rerank")) return model.rankingContext();
    }
    return model.sequencePool(await this.adapterSet(target.adapterIds, model, signal));
  }

  /** Unloads an idle model: false when it was not loaded, MODEL_IN_USE while it serves requests. */
  unload(modelId: string): Promise<boolean> {
    return this.pool.unload(modelId);
  }

  list(): LoadedModelInfo[] {
    return this.pool.list().map((model) => model.info());
  }

  /** Runs `work` on the model (loaded if needed) while holding a lease on it. */
  private async withModel<T>(target: ModelTarget, options: RequestOptions, work: (model: LoadedModel) => T): Promise<T> {
    const held = this.holdings();
    try {
      const model = await this.leaseModel(target, this.requestSignal(options, held));
      held.add(() => this.pool.release(model, target.keepAliveMs));
      return work(model);
    } finally {
      held.release();
    }
  }

  /** Stops every request, unloads every model, releases llama.cpp. */
  async close(): Promise<void> {
    this.shutdown.abort(new DOMException("the node is shutting down", "AbortError"));
    if (this.running > 0) {
      // Aborted generations stop within a token; a stream whose reader never comes back is not waited for.
      const drained = new Promise<void>((resolve) => (this.drained = resolve));
      await Promise.race([drained, delay(CLOSE_GRACE_MS, undefined, { ref: false })]);
    }
    await this.pool.close();
    if (!this.options.llama) await (await this.llamaPromise?.catch(() => undefined))?.dispose();
  }

  /**
   * Validation errors surface on the first `next()`, like every other failure of a stream.
   * The model lease, admission slot and sequence are given back the moment generation ends, even
   * if the reader is slow, gone, or never resumes the stream after cancelling it.
   */
  private async *generate<T extends ModelTarget>(
    validate: () => T,
    options: RequestOptions,
    run: (model: LoadedModel, target: GenerationTarget, checked: T) => Promise<GenerationOutcome>,
  ): AsyncGenerator<GenerationEvent> {
    const target = validate();
    const held = this.holdings();
    try {
      const signal = this.requestSignal(options, held);
      const model = await this.leaseModel(target, signal, "text-generation");
      let served = false;
      // A request refused here (an unknown adapter, a full queue) leaves the model's keep-alive as it was:
      // one client's mistake must not unpin a model an operator loaded with keep_alive -1.
      held.add(() => this.pool.release(model, served ? target.keepAliveMs : model.keepAliveMs));
      const adapters = await this.adapterSet(target.adapterIds, model, signal);
      held.add(await model.admission.enter(signal));
      served = true;
      const claim = model.claimSequencePool(adapters);
      held.add(claim.release);
      const pool = await raceAbort(claim.pool, signal);
      const processed = new ProcessedTokens();
      const sequenceFor = (prompt: readonly Token[]) => {
        const taken = pool.take(prompt);
        held.add(() => pool.give(taken.sequence));
        processed.took(taken.sequence, prompt.length);
        return taken;
      };
      try {
        yield* deltaStream((emit, generationSignal) => {
          const counted: GenerationSink = { emit, tokens: (n) => (model.generatedTokens += n) };
          const on: GenerationTarget = { model: model.model, contextSize: model.contextSize, sequenceFor, sink: counted, signal: generationSignal, modelId: model.id };
          return run(model, on, target)
            .then(
              (outcome) => (processed.answered(outcome.usage), outcome),
              (err: unknown) => {
                processed.stopped();
                throw err;
              },
            )
            .finally(held.release);
        }, signal, this.options.settings.streamIntervalMs);
      } finally {
        // Told once the reader has taken the end (so the runner sends it with the end, not on its own).
        if (processed.value) this.tokensProcessed(model.id, processed.value);
      }
    } finally {
      held.release();
    }
  }

  /** Reports the tokens of `texts` a request had the model read (embeddings, rerank); returns their count. */
  private inputsProcessed(model: LoadedModel, texts: readonly string[]): number {
    const promptTokens = countTokens(model.model, texts);
    if (promptTokens > 0) this.tokensProcessed(model.id, { promptTokens, completionTokens: 0 });
    return promptTokens;
  }

  private tokensProcessed(modelId: string, usage: Pick<TokenUsage, "promptTokens" | "completionTokens">): void {
    this.events.emit({ type: "tokens-processed", modelId, promptTokens: usage.promptTokens, completionTokens: usage.completionTokens });
  }

  /** What one request holds (counted for close), given back once, last taken first. */
  private holdings(): Holdings {
    this.running++;
    const releases: Array<() => void> = [];
    let released = false;
    return {
      add: (release) => void releases.push(release),
      release: () => {
        if (released) return;
        released = true;
        for (const release of releases.reverse()) release();
        this.settle();
      },
    };
  }

  private settle(): void {
    this.running--;
    if (this.running === 0) this.drained?.();
  }

  /** The request's signal, also aborted when the engine shuts down; linked only as long as `held` is held. */
  private requestSignal(options: RequestOptions, held: Holdings): AbortSignal {
    if (!options.signal) {
      this.shutdown.signal.throwIfAborted();
      return this.shutdown.signal;
    }
    const linked = linkedSignal(options.signal, this.shutdown.signal);
    held.add(linked.dispose);
    linked.signal.throwIfAborted();
    return linked.signal;
  }

  /** The model with a lease taken: from the pool, or located (resolved if needed) and loaded. */
  private async leaseModel(target: ModelTarget, signal: AbortSignal, capability?: Capability): Promise<LoadedModel> {
    const loaded = this.pool.leaseLoaded(target.modelId);
    if (loaded) {
      try {
        requireCapability(loaded.entry, capability);
      } catch (err) {
        this.pool.release(loaded);
        throw err;
      }
      return loaded;
    }
    const located = await this.options.models.locate(target.modelId, { signal, localOnly: target.noWait ?? false, ...(capability ? { capability } : {}) });
    return this.pool.lease({ id: target.modelId, ...located }, signal);
  }

  private async adapterSet(ids: readonly string[] | undefined, model: LoadedModel, signal: AbortSignal): Promise<AdapterSet> {
    if (!ids || ids.length === 0) return NO_ADAPTERS;
    const key = adapterSetKey(ids);
    const adapters = await Promise.all(
      key.split(",").map(async (id) => ({ id, path: await this.options.adapters.locate(id, { signal }) })),
    );
    await Promise.all(adapters.map((adapter) => this.checkAdapter(adapter, model)));
    return { key, adapters };
  }

  /** An adapter file is checked once: readable, complete, an adapter, for this architecture. */
  private checkAdapter(adapter: { id: string; path: string }, model: LoadedModel): Promise<void> {
    const architecture = valueAt(model.model.fileInfo.metadata, "general.architecture");
    const cacheKey = `${adapter.path}\0${String(architecture)}`;
    let check = this.checkedAdapters.get(cacheKey);
    if (!check) {
      check = checkGgufFile(adapter.path, "adapter").then((info) => {
        const adapterArchitecture = valueAt(info.metadata, "general.architecture");
        if (adapterArchitecture !== architecture) {
          throw new LlmlbError(
            "INVALID_MODEL_FILE",
            `adapter "${adapter.id}" is for ${String(adapterArchitecture)} models; model "${model.id}" is ${String(architecture)}`,
            { adapter_id: adapter.id, model_id: model.id },
          );
        }
      });
      check.catch(() => this.checkedAdapters.delete(cacheKey));
      this.checkedAdapters.set(cacheKey, check);
    }
    return check;
  }
}

async function acceleratorOf(llama: Llama): Promise<AcceleratorInfo> {
  const backend = backendOf(llama);
  if (backend === "cpu") return { backend, devices: [], totalBytes: 0, usedBytes: 0 };
  const [names, vram] = await Promise.all([llama.getGpuDeviceNames(), llama.getVramState()]);
  // llama.cpp reports memory over all devices; each device gets its share.
  const share = (n: number) => Math.round(n / Math.max(1, names.length));
  return {
    backend,
    devices: names.map((name) => ({ name, totalBytes: share(vram.total), usedBytes: share(vram.used) })),
    totalBytes: vram.total,
    usedBytes: vram.used,
  };
}

/** What a chat template walks and writes for a request. */
function renderShape(input: ChatInput): RenderShape {
  const tools = input.tools ?? [];
  const items = input.messages.length + input.messages.reduce((n, m) => n + (m.toolCalls?.length ?? 0), 0) + tools.length;
  const textChars = promptTexts(input.messages).reduce((n, text) => n + text.length, 0) + (tools.length > 0 ? JSON.stringify(tools).length : 0);
  return { items, textChars };
}

function requireDimensions(dimensions: number, modelDimensions: number): void {
  if (dimensions <= modelDimensions) return;
  throw new LlmlbError("INVALID_ARGUMENT", `dimensions ${dimensions} is more than the model's ${modelDimensions}; ask for at most ${modelDimensions}`, { field: "dimensions" });
}

/** The first `dimensions` values renormalised to unit length (Matryoshka embeddings). */
function shortenEmbedding(vector: number[], dimensions: number): number[] {
  const head = vector.slice(0, dimensions);
  const norm = Math.hypot(...head);
  return norm > 0 ? head.map((x) => x / norm) : head;
}

