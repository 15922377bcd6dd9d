import type { Llama } from "node-llama-cpp";
import { LlmlbError, isLlmlbError } from "../errors/index.js";
import type { ModelEvents } from "../events/model-events.js";
import type { Logger } from "../logging/index.js";
import { backendOf } from "./llama-backend.js";
import { LoadedModel } from "./loaded-model.js";
import { insufficientMemory } from "./memory-budget.js";
import { asEngineError, openModel, planModel } from "./model-loader.js";
import type { LocatedModel } from "./types.js";

export interface ModelPoolOptions {
  llama: () => Promise<Llama>;
  budget: number;
  parallelism: number;
  queueSize: number;
  threads: number;
  /** Tokens per sequence for entries without their own context length; 0 fits the budget. */
  contextSize: number;
  /** Default for requests that do not say how long the model stays loaded once idle. */
  keepAliveMs: number;
  events: ModelEvents;
  logger: Logger;
}

interface PendingLoad {
  promise: Promise<LoadedModel>;
  /** Callers waiting for it; each gets a lease the moment the model goes into the pool. */
  waiters: number;
  granted?: LoadedModel;
}

/**
 * How long a model released with keep_alive 0 stays before it is unloaded: a moment, so the calls of
 * one request that start one after another (a multi-prompt completion's further prompts) and a client's
 * back-to-back requests do not unload and load it again in between.
 */
const KEEP_ALIVE_ZERO_GRACE_MS = 1_000;

/**
 * Loaded models by id, inside a memory budget: loading or growing a model first evicts
 * least-recently-used idle models; one load per id at a time. Allocations run one at a time so
 * the accounting never races. An idle model unloads when its keep-alive runs out. Publishes
 * loaded / unloaded / load-failed.
 */
export class ModelPool {
  private readonly models = new Map<string, LoadedModel>();
  private readonly expiryTimers = new Map<LoadedModel, NodeJS.Timeout>();
  private readonly pending = new Map<string, PendingLoad>();
  private allocation: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: ModelPoolOptions) {}

  get budget(): number {
    return this.options.budget;
  }

  get usedBytes(): number {
    let used = 0;
    for (const model of this.models.values()) used += model.memoryBytes;
    return used;
  }

  /** A loaded model with a lease taken, or undefined. */
  leaseLoaded(id: string): LoadedModel | undefined {
    const model = this.models.get(id);
    if (model) this.takeLease(model, 1);
    return model;
  }

  /** Loads the model if needed and returns it with a lease taken; release with `release`. */
  async lease(located: LocatedModel & { id: string }, signal: AbortSignal): Promise<LoadedModel> {
    const loaded = this.leaseLoaded(located.id);
    if (loaded) return loaded;
    let pending = this.pending.get(located.id);
    if (!pending) {
      const load: PendingLoad = { promise: this.load(located), waiters: 0 };
      const forget = () => this.pending.delete(located.id);
      load.promise.then(forget, forget);
      this.pending.set(located.id, load);
      pending = load;
    }
    pending.waiters++;
    try {
      return await raceAbort(pending.promise, signal);
    } catch (err) {
      // Counted when the model went in (see load): give the lease back; otherwise just leave.
      if (pending.granted) this.release(pending.granted);
      else pending.waiters--;
      throw err;
    }
  }

  /** Gives a lease back; the request's `keepAliveMs` (else the node default) decides how long the model stays once idle. */
  release(model: LoadedModel, keepAliveMs?: number): void {
    model.leases = Math.max(0, model.leases - 1);
    model.touch();
    model.keepAliveMs = keepAliveMs ?? this.options.keepAliveMs;
    if (model.idle && this.models.get(model.id) === model) this.scheduleExpiry(model);
  }

  private takeLease(model: LoadedModel, count: number): void {
    model.leases += count;
    if (count > 0) this.cancelExpiry(model);
  }

  private scheduleExpiry(model: LoadedModel): void {
    this.cancelExpiry(model);
    const ms = model.keepAliveMs;
    if (ms < 0) return;
    const waitMs = ms === 0 ? KEEP_ALIVE_ZERO_GRACE_MS : ms;
    const expiresAt = new Date(Date.now() + waitMs);
    const expire = () => {
      this.expiryTimers.delete(model);
      void this.serialized(async () => {
        // Waiting its turn, the model may have been leased and released again: only the expiry
        // the last request set (still this one, the model idle) unloads it.
        if (model.idle && model.expiresAt === expiresAt && this.models.get(model.id) === model) await this.evict(model, ms === 0 ? "keep_alive 0" : "idle keep-alive expired");
      }).catch((err: unknown) => this.options.logger.warn({ modelId: model.id, err }, "idle unload failed"));
    };
    model.expiresAt = expiresAt;
    const timer = setTimeout(expire, waitMs);
    timer.unref();
    this.expiryTimers.set(model, timer);
  }

  private cancelExpiry(model: LoadedModel): void {
    const timer = this.expiryTimers.get(model);
    if (timer) clearTimeout(timer);
    this.expiryTimers.delete(model);
    model.expiresAt = undefined;
  }

  list(): LoadedModel[] {
    return [...this.models.values()];
  }

  /** Unloads an idle model; false when it was not loaded; MODEL_IN_USE while it serves requests. */
  async unload(id: string): Promise<boolean> {
    await this.pending.get(id)?.promise.catch(() => undefined);
    // Checked in the allocation queue, right before the eviction: a request may take the model while the unload waits its turn.
    return this.serialized(async () => {
      const model = this.models.get(id);
      if (!model) return false;
      if (!model.idle) {
        const { active, queued } = model.admission;
        const why = active + queued > 0
          ? `is serving ${active} requests (${queued} queued); unload it when they finish`
          : "is still being set up for a request or a load (its context is being created); unload it once that has finished";
        throw new LlmlbError("MODEL_IN_USE", `model "${id}" ${why}`, { model_id: id });
      }
      await this.evict(model, "requested");
      return true;
    });
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.pending.values()].map((p) => p.promise));
    for (const model of [...this.models.values()]) await this.evict(model, "shutdown");
  }

  /**
   * Makes room for `bytes` (evicting idle models other than `requester`, then the requester's
   * own idle contexts) and runs `create` before any other allocation starts.
   */
  allocate<T>(bytes: number, requester: LoadedModel | string, create: () => Promise<T>): Promise<T> {
    return this.serialized(async () => {
      await this.makeRoom(bytes, requester);
      const id = typeof requester === "string" ? requester : requester.id;
      try {
        return await create();
      } catch (err) {
        throw asEngineError(err, `model "${id}"`);
      }
    });
  }

  private async load(located: LocatedModel & { id: string }): Promise<LoadedModel> {
    const { id, path } = located;
    const started = performance.now();
    this.options.events.emit({ type: "load-started", modelId: id, path });
    try {
      const llama = await this.options.llama();
      const plan = await planModel(llama, path, {
        contextSize: located.entry.contextLength ?? this.options.contextSize,
        sequences: this.options.parallelism,
        budget: this.options.budget,
      });
      const needed = plan.weightBytes + plan.contextBytes;
      if (needed > this.options.budget) throw insufficientMemory(id, needed, this.options.budget, 0);
      const model = await this.allocate(plan.weightBytes, id, async () => {
        const llamaModel = await openModel(llama, path);
        let loaded: LoadedModel;
        try {
          loaded = new LoadedModel({
            id,
            entry: located.entry,
            model: llamaModel,
            insights: plan.insights,
            weightBytes: plan.weightBytes,
            contextSize: plan.contextSize,
            keepAliveMs: this.options.keepAliveMs,
            parallelism: this.options.parallelism,
            queueSize: this.options.queueSize,
            threads: this.options.threads,
            backend: backendOf(llama),
            allocate: (bytes, requester, create) => this.allocate(bytes, requester, create),
          });
        } catch (err) {
          await llamaModel.dispose();
          throw err;
        }
        // Leases granted in the same tick the model becomes visible, so no eviction sees it idle.
        const pending = this.pending.get(id);
        this.takeLease(loaded, pending?.waiters ?? 0);
        if (pending) pending.granted = loaded;
        this.models.set(id, loaded);
        if (loaded.idle) this.scheduleExpiry(loaded);
        return loaded;
      });
      this.options.logger.info({ modelId: id, path, ms: Math.round(performance.now() - started) }, "model loaded");
      this.options.events.emit({ type: "loaded", modelId: id });
      return model;
    } catch (err) {
      const reason = isLlmlbError(err) ? err.reason : "INTERNAL";
      const message = err instanceof Error ? err.message : String(err);
      this.options.logger.warn({ modelId: id, path, reason, err: message }, "model load failed");
      this.options.events.emit({ type: "load-failed", modelId: id, reason: message, code: reason });
      throw err;
    }
  }

  private async makeRoom(bytes: number, requester: LoadedModel | string): Promise<void> {
    const { budget } = this.options;
    const requesterModel = typeof requester === "string" ? undefined : requester;
    const id = typeof requester === "string" ? requester : requester.id;
    while (this.usedBytes + bytes > budget) {
      const victim = this.leastRecentlyUsedIdle(requesterModel);
      if (victim) {
        await this.evict(victim, "memory budget");
        continue;
      }
      if (requesterModel && (await requesterModel.disposeIdleContexts("")) > 0) continue;
      const busy = this.usedBytes - (requesterModel?.memoryBytes ?? 0);
      throw insufficientMemory(id, bytes + (requesterModel?.memoryBytes ?? 0), budget, busy);
    }
  }

  private leastRecentlyUsedIdle(except?: LoadedModel): LoadedModel | undefined {
    let victim: LoadedModel | undefined;
    for (const model of this.models.values()) {
      if (model === except || !model.idle) continue;
      if (!victim || model.lastUsedAt < victim.lastUsedAt) victim = model;
    }
    return victim;
  }

  private async evict(model: LoadedModel, why: string): Promise<void> {
    this.cancelExpiry(model);
    this.models.delete(model.id);
    model.admission.rejectAll(new LlmlbError("MODEL_NOT_READY", `model "${model.id}" was unloaded; retry`));
    try {
      await model.dispose();
    } finally {
      this.options.logger.info({ modelId: model.id, why }, "model unloaded");
      this.options.events.emit({ type: "unloaded", modelId: model.id });
    }
  }

  private serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = this.allocation.then(task, task);
    this.allocation = run.catch(() => undefined);
    return run;
  }
}

/** Waits for `promise` unless `signal` aborts first (the promise itself keeps running). */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}
