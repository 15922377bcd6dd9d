import type { ModelEvent } from "../../events/model-events.js";
import { LlmlbError, isAbortError, type ErrorMetadata } from "../../errors/index.js";
import { REASONS, type Reason } from "../../errors/reasons.js";
import type { InferenceEngine } from "../engine.js";
import type { AdapterLocator, EngineSettings, LocatedModel, ModelLocator } from "../types.js";

/**
 * The engine methods the runner serves. Each call crosses the boundary as its method name and its
 * request object (structured clone, untouched); a new engine method is one more name here.
 */
export const STREAM_METHODS = ["chat", "complete"] as const;
export const CALL_METHODS = ["embed", "rerank", "tokenize", "detokenize", "load", "unload", "list", "accelerator", "loadedAccelerator", "activeRequestCount"] as const;

export type StreamMethod = (typeof STREAM_METHODS)[number];
export type CallMethod = (typeof CALL_METHODS)[number];
export type EngineMethod = StreamMethod | CallMethod;

/** What a call answers while no runner runs (so no model is loaded): reading state never starts one. */
export const ANSWERS_WITHOUT_RUNNER: Partial<Record<CallMethod, unknown>> = { list: [], unload: false, activeRequestCount: 0, loadedAccelerator: undefined };

/** Stream items the runner sends ahead of the parent's acknowledgements; past it the runner's deltas are joined. */
export const STREAM_WINDOW = 8;

/**
 * Items the parent takes before it acknowledges them, all in one message: every message wakes the
 * other process, which on a machine with few cores is time taken from the generation.
 */
export const STREAM_ACK_BATCH = STREAM_WINDOW / 2;

/** What the runner process is started with (argv[2], JSON). */
export interface RunnerInit {
  settings: EngineSettings;
  logLevel: string;
  /** Load llama.cpp right away (a restart after a crash), so the next request does not wait for it. */
  warm: boolean;
}

/** Questions the runner asks the node (the catalog, store and resolver stay in the node). */
export type RunnerQuestion =
  | { kind: "locate-model"; modelId: string; options: WithoutSignal<Parameters<ModelLocator["locate"]>[1]> }
  | { kind: "locate-adapter"; adapterId: string; options: WithoutSignal<Parameters<AdapterLocator["locate"]>[1]> };

type WithoutSignal<T> = Omit<T, "signal">;

export type RunnerAnswer = LocatedModel | string;

export type WireError =
  | { kind: "llmlb"; reason: string; message: string; metadata: ErrorMetadata }
  | { kind: "abort"; message: string }
  | { kind: "other"; name: string; message: string };

/** Node → runner. */
export type ToRunner =
  /** `options`: the request options without the signal (a cancel is its own message). */
  | { t: "call"; id: number; method: EngineMethod; input: unknown; options: object }
  | { t: "cancel"; id: number }
  /** `count` more items of the stream were taken. */
  | { t: "ack"; id: number; count: number }
  | { t: "answer"; id: number; value: RunnerAnswer }
  | { t: "answer-error"; id: number; error: WireError }
  /** A heartbeat: answered with "pong" from the runner's main thread (generation runs in native threads). */
  | { t: "ping"; seq: number }
  | { t: "close" };

/** Runner → node. */
export type FromRunner =
  | { t: "ready" }
  | { t: "item"; id: number; item: unknown }
  | { t: "done"; id: number; value?: unknown }
  | { t: "error"; id: number; error: WireError }
  | { t: "ask"; id: number; question: RunnerQuestion }
  | { t: "ask-abort"; id: number }
  | { t: "model-event"; event: ModelEvent }
  | { t: "log"; line: string }
  | { t: "pong"; seq: number }
  /** Loading llama.cpp started (true) or ended: it blocks the runner's thread meanwhile, like a model load. */
  | { t: "llama-loading"; loading: boolean }
  /** Messages sent in one turn of the runner's event loop (a stream's last delta, its end and done), in order. */
  | { t: "batch"; messages: FromRunner[] };

/** The node's view of the engine: the runner's methods, every one asynchronous, plus close. */
export type Engine = {
  [K in StreamMethod]: InferenceEngine[K];
} & {
  [K in CallMethod]: (...args: Parameters<InferenceEngine[K]>) => Promise<Awaited<ReturnType<InferenceEngine[K]>>>;
} & {
  close(): Promise<void>;
};

export function toWireError(err: unknown): WireError {
  if (err instanceof LlmlbError) return { kind: "llmlb", reason: err.reason, message: err.message, metadata: err.metadata };
  if (isAbortError(err)) return { kind: "abort", message: (err as Error).message };
  if (err instanceof Error) return { kind: "other", name: err.name, message: err.message };
  return { kind: "other", name: "Error", message: String(err) };
}

export function fromWireError(wire: WireError): Error {
  switch (wire.kind) {
    case "llmlb": {
      const reason = (wire.reason in REASONS ? wire.reason : "INTERNAL") as Reason;
      return new LlmlbError(reason, wire.message, wire.metadata);
    }
    case "abort":
      return new DOMException(wire.message, "AbortError");
    case "other":
      return Object.assign(new Error(wire.message), { name: wire.name });
  }
}

/** The model a request names (its `modelId`, or the id itself for unload), for crash reports. */
export function modelIdOf(input: unknown): string | undefined {
  if (typeof input === "string") return input;
  const id = (input as { modelId?: unknown } | undefined)?.modelId;
  return typeof id === "string" ? id : undefined;
}
