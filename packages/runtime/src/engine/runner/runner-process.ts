import { fork, type ChildProcess } from "node:child_process";
import { setTimeout as delay } from "node:timers/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { engineCrashed, runnerStartFailed, type RunnerExit } from "../../errors/index.js";
import { pinnedNode } from "../../host/cpu-affinity.js";
import type { ModelEvent } from "../../events/model-events.js";
import type { Logger } from "../../logging/index.js";
import {
  fromWireError,
  modelIdOf,
  toWireError,
  STREAM_ACK_BATCH,
  type EngineMethod,
  type FromRunner,
  type RunnerAnswer,
  type RunnerInit,
  type RunnerQuestion,
  type ToRunner,
} from "./protocol.js";

/** JS heap of the runner: model weights live outside it, so a hostile file's huge array fails here, not in the machine. */
const RUNNER_HEAP_MB = 1024;
const STDERR_TAIL_BYTES = 8 * 1024;
const CLOSE_TIMEOUT_MS = 10_000;
const STDIO_DRAIN_MS = 1_000;
/** A runner that has not said "ready" by then (it only loads our modules, not llama.cpp) is stuck. */
const START_TIMEOUT_MS = 120_000;
/**
 * Heartbeats per hang timeout. A hang is that many beats in a row without an answer, so one long
 * stall of the node's own event loop (which delays the pong's reading, not the runner) counts once.
 */
const HANG_BEATS = 5;

export interface RunnerProcessOptions {
  init: RunnerInit;
  /** Answers the runner's questions (locate a model or an adapter) in the node. */
  answer: (question: RunnerQuestion, signal: AbortSignal) => Promise<RunnerAnswer>;
  onModelEvent: (event: ModelEvent) => void;
  /** Models this runner reported loading and not yet loaded or failed (the owner tracks them from onModelEvent). */
  loadingModels: () => string[];
  /** Called when the process has ended, before the calls open on it fail. */
  onExit: (exit: RunnerExit) => void;
  /** A runner that answers no heartbeat for this long is killed (its calls fail as for a crash); 0 or less: never. */
  hangTimeoutMs: number;
  /**
   * The bound instead while a model or llama.cpp itself loads: node-llama-cpp resolves the chat
   * template's format on the runner's thread by rendering it dozens of times (about a second for a
   * tiny model), and initialising a GPU backend can take seconds there too.
   */
  loadHangTimeoutMs: number;
  /** CPUs to pin the runner to (see LLMLB_RUNNER_CPUS), or "" for any. */
  cpus: string;
  logger: Logger;
}

interface OpenCall {
  modelId?: string;
  item?: (item: unknown) => void;
  settle: (err: Error | undefined, value?: unknown) => void;
}

/**
 * One runner process and the calls open on it. When it exits unexpectedly every open call fails
 * with ENGINE_CRASHED naming its model; `exited` tells the owner how it ended.
 */
export class RunnerProcess {
  readonly exited: Promise<RunnerExit>;
  private readonly child: ChildProcess;
  private readonly calls = new Map<number, OpenCall>();
  private readonly questions = new Map<number, AbortController>();
  private nextCall = 1;
  private stderrTail = "";
  private exit?: RunnerExit;
  private closing = false;
  private heartbeat?: NodeJS.Timeout;
  private awaitingPong = false;
  private missedBeats = 0;
  private pings = 0;
  private hungAfterMs?: number;
  private llamaLoading = false;

  private constructor(
    private readonly options: RunnerProcessOptions,
    private readonly ready: () => void,
  ) {
    const { file, execArgv } = runnerEntry();
    // Pinned, node runs under taskset; fork's IPC channel passes through it (taskset execs node).
    const pinned = options.cpus ? pinnedNode(options.cpus) : undefined;
    this.child = fork(file, [JSON.stringify(options.init)], {
      ...(pinned ? { execPath: pinned.execPath } : {}),
      execArgv: [...(pinned?.prefixArgs ?? []), ...execArgv, `--max-old-space-size=${RUNNER_HEAP_MB}`],
      serialization: "advanced",
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    this.child.stdout!.setEncoding("utf8").on("data", (text: string) => this.logOutput(text, "stdout"));
    this.child.stderr!.setEncoding("utf8").on("data", (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL_BYTES);
      this.logOutput(text, "stderr");
    });
    this.child.on("message", (message: FromRunner) => this.receive(message));
    this.exited = new Promise((resolve) => {
      // Waits for stderr to be read to the end (llama.cpp's last words), unless a grandchild holds it open.
      this.child.on("exit", async (code, signal) => {
        clearInterval(this.heartbeat);
        await Promise.race([new Promise((closed) => this.child.once("close", closed)), delay(STDIO_DRAIN_MS, undefined, { ref: false })]);
        const exit: RunnerExit = { code, signal, stderrTail: this.stderrTail, ...(this.hungAfterMs !== undefined ? { hungAfterMs: this.hungAfterMs } : {}) };
        this.exit = exit;
        if (!this.closing) {
          options.logger.error({ pid: this.child.pid, code, signal, hung: this.hungAfterMs !== undefined, stderr: lastLines(this.stderrTail) }, "inference runner crashed");
        }
        options.onExit(exit);
        // Questions still being answered (a download for a request) run to the end: downloads outlive a crash.
        for (const call of this.calls.values()) {
          call.settle(this.closing ? new DOMException("the node is shutting down", "AbortError") : engineCrashed(call.modelId, exit));
        }
        this.calls.clear();
        resolve(exit);
      });
    });
  }

  /** Starts a runner and waits until it takes calls; ENGINE_CRASHED when it exits first. */
  static async start(options: RunnerProcessOptions): Promise<RunnerProcess> {
    let ready!: () => void;
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    const runner = new RunnerProcess(options, ready);
    const tooSlow = setTimeout(() => runner.child.kill("SIGKILL"), START_TIMEOUT_MS);
    const outcome = await Promise.race([isReady.then(() => undefined), runner.exited]);
    clearTimeout(tooSlow);
    if (outcome) throw runnerStartFailed(outcome);
    options.logger.info({ pid: runner.pid }, "inference runner started");
    return runner;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Whether any call was ever sent to this runner. */
  get served(): boolean {
    return this.nextCall > 1;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** A request/response method of the engine. */
  call(method: EngineMethod, input: unknown, options: object, signal?: AbortSignal): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.open(method, input, options, signal, {
        modelId: modelIdOf(input),
        settle: (err, value) => (err ? reject(err) : resolve(value)),
      });
    });
  }

  /**
   * A streaming method: items as the runner sends them, each acknowledged when the reader takes
   * it (the runner sends a few ahead). Cancelled when `signal` aborts or the reader stops early;
   * it ends only once the runner has stopped the generation.
   */
  async *stream(method: EngineMethod, input: unknown, options: object, signal?: AbortSignal): AsyncGenerator<unknown> {
    const queue: unknown[] = [];
    let unacked = 0;
    let ended: { err?: Error } | undefined;
    let wake: (() => void) | undefined;
    const notify = () => {
      const resume = wake;
      wake = undefined;
      resume?.();
    };
    const id = this.open(method, input, options, signal, {
      modelId: modelIdOf(input),
      item: (item) => (queue.push(item), notify()),
      settle: (err) => ((ended = { err }), notify()),
    });
    try {
      for (;;) {
        if (queue.length > 0) {
          const item = queue.shift();
          if (id !== undefined && ++unacked === STREAM_ACK_BATCH) {
            this.send({ t: "ack", id, count: unacked });
            unacked = 0;
          }
          yield item;
          continue;
        }
        if (ended) break;
        await new Promise<void>((resolve) => (wake = resolve));
      }
      const finished = ended as { err?: Error };
      if (finished.err) throw finished.err;
    } finally {
      if (!ended && id !== undefined) {
        this.send({ t: "cancel", id });
        while (!ended) await new Promise<void>((resolve) => (wake = resolve));
      }
    }
  }

  /** Asks the runner to unload everything and exit; kills it if it does not within 10 s. */
  async close(): Promise<void> {
    if (!this.alive) return;
    this.closing = true;
    clearInterval(this.heartbeat);
    this.send({ t: "close" });
    const timer = setTimeout(() => this.child.kill("SIGKILL"), CLOSE_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  private open(method: EngineMethod, input: unknown, options: object, signal: AbortSignal | undefined, call: OpenCall): number | undefined {
    if (this.exit) {
      call.settle(engineCrashed(call.modelId, this.exit));
      return undefined;
    }
    if (signal?.aborted) {
      call.settle(signal.reason as Error);
      return undefined;
    }
    const id = this.nextCall++;
    if (signal) {
      const onAbort = () => this.send({ t: "cancel", id });
      signal.addEventListener("abort", onAbort, { once: true });
      const settle = call.settle;
      call.settle = (err, value) => {
        signal.removeEventListener("abort", onAbort);
        // The caller sees its own reason for a cancel it asked for.
        settle(err && signal.aborted && err.name === "AbortError" ? (signal.reason as Error) : err, value);
      };
    }
    this.calls.set(id, call);
    this.send({ t: "call", id, method, input, options });
    return id;
  }

  private receive(message: FromRunner): void {
    switch (message.t) {
      case "ready":
        this.watchHeartbeat();
        this.ready();
        break;
      case "batch":
        for (const each of message.messages) this.receive(each);
        break;
      case "item":
        this.calls.get(message.id)?.item?.(message.item);
        break;
      case "done":
      case "error": {
        const call = this.calls.get(message.id);
        this.calls.delete(message.id);
        call?.settle(message.t === "error" ? fromWireError(message.error) : undefined, message.t === "done" ? message.value : undefined);
        break;
      }
      case "ask":
        void this.answer(message.id, message.question);
        break;
      case "ask-abort":
        this.questions.get(message.id)?.abort(new DOMException("the runner stopped waiting", "AbortError"));
        break;
      case "model-event":
        this.options.onModelEvent(message.event);
        break;
      case "log":
        this.relayLog(message.line);
        break;
      case "pong":
        if (message.seq === this.pings) this.awaitingPong = false;
        break;
      case "llama-loading":
        this.llamaLoading = message.loading;
        break;
    }
  }

  /**
   * Pings the runner every hang timeout / HANG_BEATS; as many unanswered beats in a row as fit in
   * the bound in force (the load bound while a model or llama.cpp loads) kill it as hung.
   */
  private watchHeartbeat(): void {
    const { hangTimeoutMs } = this.options;
    if (hangTimeoutMs <= 0) return;
    const beatMs = hangTimeoutMs / HANG_BEATS;
    this.heartbeat = setInterval(() => {
      if (!this.awaitingPong) {
        this.missedBeats = 0;
        this.awaitingPong = true;
        this.send({ t: "ping", seq: ++this.pings });
        return;
      }
      const loading = this.options.loadingModels();
      const timeoutMs = loading.length > 0 || this.llamaLoading ? this.loadBound() : hangTimeoutMs;
      if (++this.missedBeats * beatMs < timeoutMs || this.hungAfterMs !== undefined) return;
      this.hungAfterMs = timeoutMs;
      this.options.logger.error({ pid: this.child.pid, timeoutMs, loading }, "inference runner answers no heartbeat; killing it");
      this.child.kill("SIGKILL");
    }, beatMs);
    this.heartbeat.unref();
  }

  private loadBound(): number {
    const { hangTimeoutMs, loadHangTimeoutMs } = this.options;
    return loadHangTimeoutMs > 0 ? Math.max(hangTimeoutMs, loadHangTimeoutMs) : Infinity;
  }

  private async answer(id: number, question: RunnerQuestion): Promise<void> {
    const controller = new AbortController();
    this.questions.set(id, controller);
    try {
      const value = await this.options.answer(question, controller.signal);
      this.send({ t: "answer", id, value });
    } catch (err) {
      this.send({ t: "answer-error", id, error: toWireError(err) });
    } finally {
      this.questions.delete(id);
    }
  }

  private send(message: ToRunner): void {
    if (this.alive && this.child.connected) this.child.send(message);
  }

  private relayLog(line: string): void {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const { level, msg, time: _time, ...fields } = record;
    const log = this.options.logger;
    const text = typeof msg === "string" ? msg : "";
    switch (level) {
      case "fatal":
      case "error":
        return log.error(fields, text);
      case "warn":
        return log.warn(fields, text);
      case "info":
        return log.info(fields, text);
      default:
        return log.debug(fields, text);
    }
  }

  private logOutput(text: string, stream: "stdout" | "stderr"): void {
    for (const line of text.split("\n")) {
      if (line.trim()) this.options.logger.warn({ pid: this.child.pid, stream }, line.trim());
    }
  }
}

/** The runner's entry: the built .js beside this bundle, or the .ts source through tsx when running from source. */
function runnerEntry(): { file: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith(".ts")) {
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
    return { file: path.join(path.dirname(here), "runner-main.ts"), execArgv: ["--conditions=source", "--import", tsx] };
  }
  // tsup puts every chunk of src/ in dist/ and this entry at dist/engine/runner/runner-main.js.
  return { file: path.join(path.dirname(here), "engine", "runner", "runner-main.js"), execArgv: [] };
}

function lastLines(text: string): string {
  return text.split("\n").filter((l) => l.trim()).slice(-5).join("\n");
}
