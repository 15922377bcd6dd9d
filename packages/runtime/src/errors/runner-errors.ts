import { LlmlbError } from "./llmlb-error.js";

/** How the inference runner process ended, with the last lines it wrote to stderr (llama.cpp's asserts). */
export interface RunnerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderrTail: string;
  /** Set when the node killed it because it answered no heartbeat for this long (a deadlock, a native loop, SIGSTOP). */
  hungAfterMs?: number;
}

export function describeExit(exit: RunnerExit): string {
  if (exit.hungAfterMs !== undefined) return `it answered no heartbeat for ${exit.hungAfterMs / 1000} s and was killed with SIGKILL`;
  const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
  const last = lastLine(exit.stderrTail);
  return last ? `${how}: ${last}` : how;
}

/**
 * A request was on the runner when it died or hung (then metadata `cause: "hang"`); the runner
 * restarts. A hang is the same code as a crash: for a client both mean "retry on a fresh runner".
 */
export function engineCrashed(modelId: string | undefined, exit: RunnerExit): LlmlbError {
  const what = modelId ? `model "${modelId}"` : "the request";
  return new LlmlbError(
    "ENGINE_CRASHED",
    `the inference runner stopped (${describeExit(exit)}) while serving ${what}; the runner restarts, retry the request`,
    { ...(modelId ? { model_id: modelId } : {}), ...(exit.hungAfterMs !== undefined ? { cause: "hang" } : {}) },
  );
}

/** The runner could not be started at all (e.g. node-llama-cpp cannot be imported). */
export function runnerStartFailed(exit: RunnerExit): LlmlbError {
  return new LlmlbError(
    "ENGINE_CRASHED",
    `the inference runner could not start (${describeExit(exit)}); check the node-llama-cpp installation and the node's log`,
  );
}

/** A model whose load crashed the runner once, asked for again before its backoff has passed. */
export function loadCrashBackoff(modelId: string, path: string, cause: string, retryAfterMs: number): LlmlbError {
  return new LlmlbError(
    "ENGINE_CRASHED",
    `loading model "${modelId}" (${path}) crashed the inference runner (${cause}); it is tried once more in ${Math.ceil(retryAfterMs / 1000)} s, or now with LoadModel`,
    { model_id: modelId, retry_after_seconds: String(Math.ceil(retryAfterMs / 1000)) },
  );
}

/** A model whose file crashed the runner on two loads: FAILED until the file changes or an operator retries. */
export function loadCrashedTwice(modelId: string, path: string, cause: string): LlmlbError {
  return new LlmlbError(
    "INVALID_MODEL_FILE",
    `loading model "${modelId}" (${path}) crashed the inference runner twice (${cause}); it stays FAILED until its file changes (e.g. deleted and pulled again) or it is loaded with LoadModel`,
    { model_id: modelId, cause: "ENGINE_CRASHED" },
  );
}

function lastLine(text: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  const assertion = lines.findLast((l) => /GGML_ASSERT|error|abort|out of memory|heap/i.test(l));
  return (assertion ?? lines.at(-1) ?? "").slice(0, 300);
}
