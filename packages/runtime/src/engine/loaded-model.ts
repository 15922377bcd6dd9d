import { stat } from "node:fs/promises";
import type { ChatWrapper, GgufInsights, LlamaEmbeddingContext, LlamaModel, LlamaRankingContext } from "node-llama-cpp";
import { llamaCpp } from "./llama-cpp.js";
import type { ModelEntry } from "../catalog/model-entry.js";
import { LlmlbError, noRankingHead } from "../errors/index.js";
import { Admission } from "./admission.js";
import type { AdapterSet } from "./adapter-set.js";
import type { GpuBackend } from "./llama-backend.js";
import { SequencePool } from "./sequence-pool.js";
import { linearTemplateCost, type TemplateCost } from "./template-cost.js";
import type { LoadedModelInfo } from "./types.js";
import { KeyedClaims } from "./keyed-claims.js";

export interface LoadedModelOptions {
  id: string;
  entry: ModelEntry;
  model: LlamaModel;
  insights: GgufInsights;
  weightBytes: number;
  /** Tokens per sequence. */
  contextSize: number;
  /** Until a request says otherwise (see keepAliveMs). */
  keepAliveMs: number;
  parallelism: number;
  queueSize: number;
  threads: number;
  backend: GpuBackend;
  /**
   * Makes room for `bytes` more inside the memory budget (evicting other idle models) and runs
   * `create` while no other allocation runs; throws INSUFFICIENT_MEMORY when it cannot.
   */
  allocate: <T>(bytes: number, requester: LoadedModel, create: () => Promise<T>) => Promise<T>;
}

/** A context for embeddings or ranking (one each, created on first use). */
interface SideContext<T> {
  context: T;
  memoryBytes: number;
}

interface SideContexts {
  embedding: LlamaEmbeddingContext;
  ranking: LlamaRankingContext;
}

/**
 * One model in memory: its llama model, chat wrapper, admission queue, one context per adapter
 * set (created on first use) and an embedding or ranking context (likewise). `leases` counts
 * requests that hold it; a model with leases is never evicted. `keepAliveMs` is what the last
 * request asked for; `expiresAt` is set while it is idle and will unload.
 */
export class LoadedModel {
  readonly id: string;
  readonly entry: ModelEntry;
  readonly model: LlamaModel;
  readonly contextSize: number;
  readonly chatWrapper: ChatWrapper;
  /** The Jinja template the chat wrapper renders (a registered one, or the GGUF's when no built-in wrapper matched). */
  readonly jinjaTemplate: string | undefined;
  /** Its render cost when provably linear in the request (see template-cost.ts). */
  readonly templateCost: TemplateCost | undefined;
  readonly admission: Admission;
  readonly loadedAt = new Date();
  lastUsedAt = new Date();
  leases = 0;
  generatedTokens = 0;
  keepAliveMs: number;
  expiresAt?: Date;
  private weightBytes: number;
  private readonly contexts = new Map<string, Promise<SequencePool>>();
  private readonly liveContexts = new Map<string, SequencePool>();
  /** Requests holding a context (by adapter-set key) that have not taken their sequence yet, or still run. */
  private readonly claims = new KeyedClaims<string>();
  private readonly sideContexts = new Map<keyof SideContexts, Promise<SideContext<unknown>>>();
  private readonly liveSideContexts = new Map<keyof SideContexts, SideContext<{ dispose(): Promise<void> }>>();
  private readonly loadedAdapterPaths = new Set<string>();

  constructor(private readonly options: LoadedModelOptions) {
    this.id = options.id;
    this.entry = options.entry;
    this.model = options.model;
    this.contextSize = options.contextSize;
    this.weightBytes = options.weightBytes;
    this.keepAliveMs = options.keepAliveMs;
    this.admission = new Admission(options.parallelism, options.queueSize, `model "${options.id}"`);
    this.chatWrapper = chatWrapperFor(options.entry, options.model);
    this.jinjaTemplate = this.chatWrapper instanceof llamaCpp().JinjaTemplateChatWrapper ? this.chatWrapper.template : undefined;
    this.templateCost = this.jinjaTemplate !== undefined ? linearTemplateCost(this.jinjaTemplate) : undefined;
  }

  get memoryBytes(): number {
    let bytes = this.weightBytes;
    for (const side of this.liveSideContexts.values()) bytes += side.memoryBytes;
    for (const pool of this.liveContexts.values()) bytes += pool.memoryBytes;
    return bytes;
  }

  get idle(): boolean {
    return this.leases === 0;
  }

  touch(): void {
    this.lastUsedAt = new Date();
  }

  /**
   * The context of `adapters` for a request, kept from disposal (to make room for another
   * adapter set) from now until `release`: between getting it and taking a sequence, a request
   * renders its prompt, and its context must not go away under it.
   */
  claimSequencePool(adapters: AdapterSet): { pool: Promise<SequencePool>; release: () => void } {
    return { pool: this.sequencePool(adapters), release: this.claims.claim(adapters.key) };
  }

  /** The context for an adapter set, created (inside the memory budget) on first use. */
  sequencePool(adapters: AdapterSet): Promise<SequencePool> {
    let pool = this.contexts.get(adapters.key);
    if (!pool) {
      pool = this.createSequencePool(adapters);
      this.contexts.set(adapters.key, pool);
      pool.catch(() => this.contexts.delete(adapters.key));
    }
    return pool;
  }

  embeddingContext(): Promise<LlamaEmbeddingContext> {
    return this.sideContext("embedding", () => this.model.createEmbeddingContext({ contextSize: this.contextSize, threads: this.options.threads }));
  }

  rankingContext(): Promise<LlamaRankingContext> {
    if (!this.model.fileInsights.supportsRanking) return Promise.reject(noRankingHead(this.id));
    return this.sideContext("ranking", () => this.model.createRankingContext({ contextSize: this.contextSize, threads: this.options.threads }));
  }

  /** Frees contexts no request uses, other than `keep`; returns the bytes freed. */
  async disposeIdleContexts(keep: string): Promise<number> {
    let freed = 0;
    for (const [key, pool] of this.liveContexts) {
      if (key === keep || pool.busy || this.claims.has(key)) continue;
      this.liveContexts.delete(key);
      this.contexts.delete(key);
      freed += pool.memoryBytes;
      await pool.dispose();
    }
    return freed;
  }

  info(): LoadedModelInfo {
    return {
      modelId: this.id,
      memoryBytes: this.memoryBytes,
      loadedAt: this.loadedAt,
      lastUsedAt: this.lastUsedAt,
      activeRequests: this.admission.active,
      queuedRequests: this.admission.queued,
      parallelism: this.admission.slots,
      adapterSets: [...this.liveContexts.keys()].sort(),
      gpu: this.options.backend,
      generatedTokens: this.generatedTokens,
      contextSize: this.contextSize,
      ...(this.expiresAt ? { expiresAt: this.expiresAt } : {}),
    };
  }

  async dispose(): Promise<void> {
    for (const pool of this.liveContexts.values()) await pool.dispose();
    this.liveContexts.clear();
    this.contexts.clear();
    for (const side of this.liveSideContexts.values()) await side.context.dispose();
    this.liveSideContexts.clear();
    this.sideContexts.clear();
    await this.model.dispose();
  }

  private async createSequencePool(adapters: AdapterSet): Promise<SequencePool> {
    const { insights, parallelism, threads, backend } = this.options;
    const estimate = await insights.estimateContextResourceRequirementsV2({
      contextSize: this.contextSize,
      sequences: parallelism,
      modelGpuLayers: backend === "cpu" ? 0 : this.model.gpuLayers,
    });
    const newAdapterPaths = adapters.adapters.map((a) => a.path).filter((p) => !this.loadedAdapterPaths.has(p));
    // llama.cpp keeps an adapter in memory until the model is disposed, so its size joins the weights.
    const adapterBytes = (await Promise.all(newAdapterPaths.map(async (p) => (await stat(p)).size))).reduce((a, b) => a + b, 0);
    const bytes = estimate.cpuRam + estimate.gpuVram;
    const pool = await this.options.allocate(bytes + adapterBytes, this, async () => {
      const self: { pool?: SequencePool } = {};
      const context = await this.model.createContext({
        contextSize: this.contextSize,
        sequences: parallelism,
        threads,
        // node-llama-cpp waits a turn of the event loop before decoding so other sequences can join
        // the batch; with a single request running nobody will, and the wait costs every token.
        batching: { dispatchSchedule: (dispatch) => ((self.pool?.active ?? 0) > 1 ? setImmediate(dispatch) : dispatch()) },
        ...(adapters.adapters.length > 0 ? { lora: { adapters: adapters.adapters.map((a) => ({ filePath: a.path })) } } : {}),
      });
      const created = new SequencePool(context, bytes);
      self.pool = created;
      for (const p of newAdapterPaths) this.loadedAdapterPaths.add(p);
      this.weightBytes += adapterBytes;
      this.liveContexts.set(adapters.key, created);
      return created;
    });
    return pool;
  }

  private sideContext<K extends keyof SideContexts>(kind: K, create: () => Promise<SideContexts[K]>): Promise<SideContexts[K]> {
    let state = this.sideContexts.get(kind) as Promise<SideContext<SideContexts[K]>> | undefined;
    if (!state) {
      state = this.createSideContext(kind, create);
      this.sideContexts.set(kind, state);
      state.catch(() => this.sideContexts.delete(kind));
    }
    return state.then((s) => s.context);
  }

  private async createSideContext<K extends keyof SideContexts>(kind: K, create: () => Promise<SideContexts[K]>): Promise<SideContext<SideContexts[K]>> {
    const { insights, backend } = this.options;
    const estimate = await insights.estimateContextResourceRequirementsV2({
      contextSize: this.contextSize,
      sequences: 1,
      isEmbeddingContext: true,
      modelGpuLayers: backend === "cpu" ? 0 : this.model.gpuLayers,
    });
    const memoryBytes = estimate.cpuRam + estimate.gpuVram;
    return this.options.allocate(memoryBytes, this, async () => {
      const state = { context: await create(), memoryBytes };
      this.liveSideContexts.set(kind, state);
      return state;
    });
  }
}

/** The catalog entry's chat template when it has one (checked by node-llama-cpp), else the GGUF's. */
function chatWrapperFor(entry: ModelEntry, model: LlamaModel): ChatWrapper {
  const { JinjaTemplateChatWrapper, resolveChatWrapper } = llamaCpp();
  if (!entry.chatTemplate) return resolveChatWrapper(model);
  try {
    return new JinjaTemplateChatWrapper({ template: entry.chatTemplate, tokenizer: model.tokenizer });
  } catch (err) {
    throw new LlmlbError(
      "INVALID_CONFIG",
      `the chat_template of model "${entry.id}" in the catalog cannot be used (${err instanceof Error ? err.message : String(err)}); fix or remove it`,
      { model_id: entry.id },
      { cause: err },
    );
  }
}
