import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/** What one bounded render came to. */
export type RenderOutcome =
  | { ok: true; output: string }
  | { ok: false; kind: "parse" | "error" | "timeout" | "size" | "memory"; message: string };

export interface TemplateLimits {
  /** Wall-clock budget of one render (the bound: at most 100 ms). */
  timeMs: number;
  /** Longest output accepted, in characters. */
  maxOutputChars: number;
  /** Heap of the render thread; a template that allocates past it kills only that thread. */
  heapMb: number;
}

export const DEFAULT_TEMPLATE_LIMITS: TemplateLimits = { timeMs: 100, maxOutputChars: 1 << 20, heapMb: 96 };

// The render thread: @huggingface/jinja (the renderer node-llama-cpp uses), one render at a time.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { Template } = require(workerData.jinja);
parentPort.on("message", ({ template, context, maxOutputChars }) => {
  let parsed;
  try {
    parsed = new Template(template);
  } catch (err) {
    return parentPort.postMessage({ ok: false, kind: "parse", message: String(err && err.message || err) });
  }
  try {
    const output = parsed.render(context);
    if (output.length > maxOutputChars) {
      return parentPort.postMessage({ ok: false, kind: "size", message: "the output has " + output.length + " characters, more than " + maxOutputChars });
    }
    parentPort.postMessage({ ok: true, output });
  } catch (err) {
    parentPort.postMessage({ ok: false, kind: "error", message: String(err && err.message || err) });
  }
});
parentPort.postMessage({ ready: true });
`;

const jinjaPath = createRequire(import.meta.url).resolve("@huggingface/jinja");

interface RenderThread {
  worker: Worker;
  ready: Promise<void>;
}

/**
 * Renders Jinja chat templates in a worker thread with a time, output and heap budget. A render
 * that runs too long is stopped by terminating the thread (a new one starts for the next render),
 * so a `{% for i in range(1e8) %}` costs the node 100 ms and nothing else. Renders run one at a time.
 */
export class TemplateSandbox {
  private thread: RenderThread | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(readonly limits: TemplateLimits = DEFAULT_TEMPLATE_LIMITS) {}

  render(template: string, context: Record<string, unknown>): Promise<RenderOutcome> {
    const run = this.queue.then(() => this.renderNow(template, context));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    await this.stopThread();
  }

  private startThread(): RenderThread {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { jinja: jinjaPath },
      resourceLimits: { maxOldGenerationSizeMb: this.limits.heapMb, maxYoungGenerationSizeMb: 16 },
      stdout: true,
      stderr: true,
    });
    worker.unref();
    // A thread that dies between renders is replaced at the next one; its error must never reach the process.
    worker.on("error", () => {
      if (this.thread?.worker === worker) this.thread = undefined;
    });
    const ready = new Promise<void>((resolve, reject) => {
      worker.once("message", () => resolve());
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`the template thread exited (${code}) before it was ready`)));
    });
    return { worker, ready };
  }

  private async stopThread(): Promise<void> {
    const thread = this.thread;
    this.thread = undefined;
    if (thread) await thread.worker.terminate();
  }

  private async renderNow(template: string, context: Record<string, unknown>): Promise<RenderOutcome> {
    if (this.closed) throw new Error("the template sandbox is closed");
    this.thread ??= this.startThread();
    const { worker, ready } = this.thread;
    try {
      await ready;
    } catch (err) {
      this.thread = undefined;
      throw err;
    }
    return new Promise<RenderOutcome>((resolve) => {
      const finish = (outcome: RenderOutcome, restart: boolean) => {
        clearTimeout(timer);
        worker.off("message", onMessage);
        worker.off("error", onError);
        worker.off("exit", onExit);
        if (restart) void this.stopThread();
        resolve(outcome);
      };
      const onMessage = (outcome: RenderOutcome) => finish(outcome, false);
      const onError = (err: Error) =>
        finish({ ok: false, kind: "memory", message: `the render thread failed (${err.message})` }, true);
      const onExit = () => finish({ ok: false, kind: "memory", message: "the render thread stopped" }, true);
      const timer = setTimeout(
        () => finish({ ok: false, kind: "timeout", message: `the render took longer than ${this.limits.timeMs} ms` }, true),
        this.limits.timeMs,
      );
      worker.on("message", onMessage);
      worker.once("error", onError);
      worker.once("exit", onExit);
      worker.postMessage({ template, context, maxOutputChars: this.limits.maxOutputChars });
    });
  }
}
