/**
 * The inference runner: a child process of the node running the unchanged InferenceEngine
 * (node-llama-cpp), so a native abort, segfault or out-of-memory ends this process, not the node.
 * Models and adapters are located by asking the node; model events and log lines go back to it.
 */
import { TemplateSandbox } from "../template-sandbox.js";
import { ModelEvents } from "../../events/model-events.js";
import type { LogLevel } from "../../config/settings.js";
import { createLogger } from "../../logging/index.js";
import { InferenceEngine } from "../engine.js";
import type { LocatedModel, RequestOptions } from "../types.js";
import {
  STREAM_METHODS,
  STREAM_WINDOW,
  fromWireError,
  toWireError,
  type EngineMethod,
  type FromRunner,
  type RunnerAnswer,
  type RunnerInit,
  type RunnerQuestion,
  type StreamMethod,
  type ToRunner,
} from "./protocol.js";

const init = JSON.parse(process.argv[2] ?? "{}") as RunnerInit;

let outbox: FromRunner[] = [];

/**
 * Messages go out once the current turn's promise jobs have run, several as one batch: a stream's
 * last delta, its end and "done" cost one write and one wake-up of the node instead of three.
 */
function send(message: FromRunner): void {
  outbox.push(message);
  if (outbox.length === 1) process.nextTick(flush);
}

function flush(): void {
  const messages = outbox;
  outbox = [];
  // The channel is gone only when the node is; "disconnect" below ends this process then.
  if (process.connected) process.send!(messages.length === 1 ? messages[0]! : { t: "batch", messages });
}

const questions = new Map<number, { resolve: (value: RunnerAnswer) => void; reject: (err: unknown) => void }>();
let nextQuestion = 1;

function ask(question: RunnerQuestion, signal: AbortSignal): Promise<RunnerAnswer> {
  signal.throwIfAborted();
  const id = nextQuestion++;
  return new Promise<RunnerAnswer>((resolve, reject) => {
    const onAbort = () => {
      questions.delete(id);
      send({ t: "ask-abort", id });
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    const settle = <T>(fn: (v: T) => void) => (v: T) => {
      signal.removeEventListener("abort", onAbort);
      questions.delete(id);
      fn(v);
    };
    questions.set(id, { resolve: settle(resolve), reject: settle(reject) });
    send({ t: "ask", id, question });
  });
}

const events = new ModelEvents();
events.on((event) => send({ t: "model-event", event }));

const logger = createLogger({
  level: init.logLevel as LogLevel,
  format: "json",
  destination: { write: (line: string) => (send({ t: "log", line }), true) } as unknown as NodeJS.WritableStream,
});

// Jinja chat templates render on this process's thread inside node-llama-cpp: each chat renders
// first in a bounded worker, so a template bomb refuses one request instead of stalling the runner.
const templates = new TemplateSandbox();

const engine = new InferenceEngine({
  settings: init.settings,
  templates,
  models: {
    locate: (modelId, { signal, ...options }) => ask({ kind: "locate-model", modelId, options }, signal) as Promise<LocatedModel>,
  },
  adapters: {
    locate: (adapterId, { signal, ...options }) => ask({ kind: "locate-adapter", adapterId, options }, signal) as Promise<string>,
  },
  events,
  logger,
  onLlamaLoading: (loading) => send({ t: "llama-loading", loading }),
});

interface ServedCall {
  controller: AbortController;
  unacked: number;
  wake?: () => void;
}

const calls = new Map<number, ServedCall>();
type AnyMethod = (input: unknown, options: RequestOptions) => unknown;
const isStream = (method: EngineMethod): method is StreamMethod => (STREAM_METHODS as readonly string[]).includes(method);

async function serve(id: number, method: EngineMethod, input: unknown, requestOptions: object): Promise<void> {
  const call: ServedCall = { controller: new AbortController(), unacked: 0 };
  calls.set(id, call);
  const options = { ...requestOptions, signal: call.controller.signal };
  try {
    if (isStream(method)) {
      const onAbort = () => call.wake?.();
      options.signal.addEventListener("abort", onAbort, { once: true });
      for await (const item of (engine[method] as AnyMethod)(input, options) as AsyncIterable<unknown>) {
        send({ t: "item", id, item });
        call.unacked++;
        // Waiting here lets the engine join the text that arrives meanwhile into one larger delta.
        while (call.unacked >= STREAM_WINDOW && !options.signal.aborted) await new Promise<void>((resolve) => (call.wake = resolve));
      }
      send({ t: "done", id });
    } else {
      send({ t: "done", id, value: await (engine[method] as AnyMethod)(input, options) });
    }
  } catch (err) {
    send({ t: "error", id, error: toWireError(err) });
  } finally {
    calls.delete(id);
  }
}

async function close(): Promise<void> {
  await engine.close().catch(() => undefined);
  await templates.close().catch(() => undefined);
  process.exit(0);
}

process.on("message", (message: ToRunner) => {
  switch (message.t) {
    case "call":
      void serve(message.id, message.method, message.input, message.options);
      break;
    case "cancel":
      calls.get(message.id)?.controller.abort(new DOMException("the client cancelled the request", "AbortError"));
      break;
    case "ack": {
      const call = calls.get(message.id);
      if (!call) break;
      call.unacked -= message.count;
      const wake = call.wake;
      call.wake = undefined;
      wake?.();
      break;
    }
    case "answer":
      questions.get(message.id)?.resolve(message.value);
      break;
    case "answer-error":
      questions.get(message.id)?.reject(fromWireError(message.error));
      break;
    case "ping":
      send({ t: "pong", seq: message.seq });
      break;
    case "close":
      void close();
      break;
  }
});
process.on("disconnect", () => process.exit(0));
send({ t: "ready" });
// A failure here is kept by the engine and reported to the first request that needs llama.cpp.
if (init.warm) void engine.llama().catch(() => undefined);
