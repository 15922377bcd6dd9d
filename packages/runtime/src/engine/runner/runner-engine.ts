import { describeExit, type RunnerExit } from "../../errors/index.js";
import type { ModelEvent, ModelEvents } from "../../events/model-events.js";
import type { Logger } from "../../logging/index.js";
import { resolveMemoryBudget } from "../memory-budget.js";
import { raceAbort } from "../model-pool.js";
import type { AdapterLocator, EngineSettings, ModelLocator, RequestOptions } from "../types.js";
import { LoadCrashGuard } from "./load-crash-guard.js";
import {
  ANSWERS_WITHOUT_RUNNER,
  CALL_METHODS,
  STREAM_METHODS,
  modelIdOf,
  type CallMethod,
  type Engine,
  type RunnerAnswer,
  type RunnerQuestion,
  type StreamMethod,
} from "./protocol.js";
import { RunnerProcess } from "./runner-process.js";
import { KeyedClaims } from "../keyed-claims.js";

export interface RunnerEngineOptions {
  settings: EngineSettings;
  models: ModelLocator;
  adapters: AdapterLocator;
  events: ModelEvents;
  logger: Logger;
  /** The runner's log level (its lines are relayed to `logger`). */
  logLevel: string;
  /** After a model's load crashed the runner, how long it is refused before one more try. */
  crashBackoffMs: number;
  /** A runner that answers no heartbeat for this long is killed and treated as crashed (0: never). */
  hangTimeoutMs: number;
  /** The same bound while a model loads (loading blocks the runner's thread for a while). */
  loadHangTimeoutMs: number;
  /** CPUs the runner is pinned to (a checked Linux CPU list), or "" for any. */
  cpus: string;
}

/** The engine as the node sees it, plus the runner's process id (operators, tests). */
export type RunnerEngine = Engine & {
  readonly memoryBudget: number;
  /** The live runner's pid, or undefined while none runs (it starts on the first request). */
  runnerPid(): number | undefined;
};

/**
 * The node's inference engine: every call goes to one runner process (started on first use,
 * restarted as soon as it dies) that runs the InferenceEngine. Models and adapters are
 * located here, in the node, so downloads survive a crash. A crash fails the calls open on it with
 * ENGINE_CRASHED; a model that was loading is marked FAILED and kept from crashing it in a loop.
 */
export function createRunnerEngine(options: RunnerEngineOptions): RunnerEngine {
  const supervisor = new RunnerSupervisor(options);
  const methods: Record<string, unknown> = {};
  for (const method of STREAM_METHODS) {
    methods[method] = (input: unknown, requestOptions?: RequestOptions) => supervisor.stream(method, input, requestOptions);
  }
  for (const method of CALL_METHODS) {
    methods[method] = (input: unknown, requestOptions?: RequestOptions) => supervisor.call(method, input, requestOptions);
  }
  return Object.assign(methods as Engine, {
    memoryBudget: supervisor.memoryBudget,
    runnerPid: () => supervisor.pid,
    close: () => supervisor.close(),
  });
}

/** How a process dies of its own native fault (an abort or assert, a bad memory access), not of an outside kill. */
const NATIVE_CRASH_SIGNALS = new Set<string>(["SIGABRT", "SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGTRAP"]);

class RunnerSupervisor {
  readonly memoryBudget: number;
  private runner?: Promise<RunnerProcess>;
  private live?: RunnerProcess;
  /** Models the runner started loading and has not finished, with their file. */
  private readonly loading = new Map<string, string>();
  private readonly loaded = new Set<string>();
  /** Loaded models that have not answered a request yet, with their file. */
  private readonly unproven = new Map<string, string>();
  /** Requests running on the runner, by model. */
  private readonly running = new KeyedClaims<string>();
  private readonly guard: LoadCrashGuard;
  private closed = false;

  constructor(private readonly options: RunnerEngineOptions) {
    // Resolved once here, so a restarted runner keeps the budget the node started with.
    this.memoryBudget = resolveMemoryBudget(options.settings.memoryBudget);
    this.guard = new LoadCrashGuard(options.crashBackoffMs);
    options.events.on((event) => {
      if (event.type === "transfer-finished" || event.type === "deleted") this.guard.forget(event.modelId);
    });
  }

  get pid(): number | undefined {
    return this.live?.alive ? this.live.pid : undefined;
  }

  async *stream(method: StreamMethod, input: unknown, requestOptions: RequestOptions = {}): AsyncGenerator<unknown> {
    const { signal, ...rest } = requestOptions;
    await this.refuseCrashedModel(input);
    const runner = await this.start(signal);
    const done = this.track(modelIdOf(input));
    try {
      yield* runner.stream(method, input, rest, signal);
      done(true);
    } finally {
      done(false);
    }
  }

  async call(method: CallMethod, input: unknown, requestOptions: RequestOptions = {}): Promise<unknown> {
    // An explicit load is an operator's retry of a model that crashed the runner.
    if (method === "load") {
      const modelId = modelIdOf(input);
      if (modelId) this.guard.forget(modelId);
    }
    // Also while a runner starts (seconds on a busy or CUDA machine): a new runner holds nothing yet,
    // and a health check or a model list must not wait for it.
    if (!this.live && method in ANSWERS_WITHOUT_RUNNER) return ANSWERS_WITHOUT_RUNNER[method];
    if (method !== "unload") await this.refuseCrashedModel(input);
    const { signal, ...rest } = requestOptions;
    const runner = await this.start(signal);
    const done = this.track(method === "load" || method === "unload" ? undefined : modelIdOf(input));
    try {
      const answer = await runner.call(method, input, rest, signal);
      done(true);
      return answer;
    } catch (err) {
      // A runner that died (or hung) under a question about its state had nothing loaded after all:
      // listing models (/v1/models, metrics) keeps answering through a crash.
      if (method in ANSWERS_WITHOUT_RUNNER && !runner.alive) return ANSWERS_WITHOUT_RUNNER[method];
      throw err;
    } finally {
      done(false);
    }
  }

  /**
   * Counts a request on `modelId` while it runs; the returned function ends it once (answered:
   * the model has served, so a later crash is not laid to it alone).
   */
  private track(modelId: string | undefined): (answered: boolean) => void {
    if (modelId === undefined) return () => {};
    const release = this.running.claim(modelId);
    return (answered) => {
      if (answered) this.unproven.delete(modelId);
      release();
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    const runner = await this.runner?.catch(() => undefined);
    await runner?.close();
  }

  /** Before (re)starting a runner for it: a model in its crash backoff is refused right here. */
  private async refuseCrashedModel(input: unknown): Promise<void> {
    const modelId = modelIdOf(input);
    if (modelId) await this.guard.check(modelId);
  }

  private start(signal: AbortSignal | undefined, warm = false): Promise<RunnerProcess> {
    if (this.closed) return Promise.reject(new DOMException("the node is shutting down", "AbortError"));
    if (!this.runner) {
      const starting = RunnerProcess.start({
        init: { settings: { ...this.options.settings, memoryBudget: this.memoryBudget }, logLevel: this.options.logLevel, warm },
        answer: (question, questionSignal) => this.answer(question, questionSignal),
        onModelEvent: (event) => this.onModelEvent(event),
        loadingModels: () => [...this.loading.keys()],
        onExit: (exit) => this.onExit(exit),
        hangTimeoutMs: this.options.hangTimeoutMs,
        loadHangTimeoutMs: this.options.loadHangTimeoutMs,
        cpus: this.options.cpus,
        logger: this.options.logger,
      });
      this.runner = starting;
      starting.then(
        (runner) => (this.live = runner),
        () => {
          // A runner that could not start is tried again by the next request, not in a loop.
          if (this.runner === starting) this.runner = undefined;
        },
      );
    }
    return signal ? raceAbort(this.runner, signal) : this.runner;
  }

  private async answer(question: RunnerQuestion, signal: AbortSignal): Promise<RunnerAnswer> {
    if (question.kind === "locate-adapter") return this.options.adapters.locate(question.adapterId, { ...question.options, signal });
    const located = await this.options.models.locate(question.modelId, { ...question.options, signal });
    await this.guard.check(question.modelId, located.path);
    return located;
  }

  private onModelEvent(event: ModelEvent): void {
    switch (event.type) {
      case "load-started":
        this.loading.set(event.modelId, event.path);
        break;
      case "loaded": {
        const path = this.loading.get(event.modelId);
        this.loading.delete(event.modelId);
        this.loaded.add(event.modelId);
        if (path !== undefined) this.unproven.set(event.modelId, path);
        this.guard.forget(event.modelId);
        break;
      }
      case "load-failed":
        this.loading.delete(event.modelId);
        break;
      case "unloaded":
        this.loaded.delete(event.modelId);
        this.unproven.delete(event.modelId);
        break;
      default:
        break;
    }
    this.options.events.emit(event);
  }

  /** Marks the model FAILED for the crash and holds it back (the LoadCrashGuard's backoff). */
  private chargeCrash(modelId: string, path: string, cause: string, during: "load" | "first-request"): void {
    const count = this.guard.record(modelId, path, cause);
    const next =
      count >= 2
        ? "it stays FAILED until its file changes (e.g. deleted and pulled again) or it is loaded with LoadModel"
        : `it is tried once more after ${Math.ceil(this.options.crashBackoffMs / 1000)} s`;
    const what = during === "load" ? `loading ${path}` : `the first request to ${path}`;
    this.options.logger.error({ modelId, path, cause, crashes: count }, during === "load" ? "loading a model crashed the inference runner" : "a model's first request crashed the inference runner");
    this.options.events.emit({ type: "load-failed", modelId, code: "ENGINE_CRASHED", reason: `${what} crashed the inference runner (${cause}); ${next}` });
  }

  /** Runs before the calls open on the dead runner fail, so a client that retries meets the guard. */
  private onExit(exit: RunnerExit): void {
    const served = this.live?.served ?? false;
    this.runner = undefined;
    this.live = undefined;
    if (this.closed) return;
    const cause = describeExit(exit);
    // A native crash (an assert, a bad access) under the first requests of a freshly loaded model is
    // that model's, as a load crash is: such a file would take the runner down on every request.
    const nativeCrash = exit.signal !== null && NATIVE_CRASH_SIGNALS.has(exit.signal);
    const firstRequestCrashes = nativeCrash ? [...this.unproven].filter(([modelId]) => this.running.has(modelId)) : [];
    // Unloaded first: a model charged with the crash ends FAILED, not READY.
    for (const modelId of this.loaded) this.options.events.emit({ type: "unloaded", modelId });
    for (const [modelId, path] of this.loading) this.chargeCrash(modelId, path, cause, "load");
    for (const [modelId, path] of firstRequestCrashes) this.chargeCrash(modelId, path, cause, "first-request");
    this.loading.clear();
    this.unproven.clear();
    this.running.clear();
    this.loaded.clear();
    // Restarted at once, with llama.cpp loaded, so the clients retrying do not wait for it. Only a
    // runner that had served calls is replaced this way (one that dies warming up is not, so no loop).
    if (served) setImmediate(() => void this.start(undefined, true).catch(() => undefined));
  }
}
