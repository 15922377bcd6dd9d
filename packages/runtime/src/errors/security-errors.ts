import { formatBytes } from "../config/parse.js";
import { LlmlbError } from "./llmlb-error.js";

/** The errors a listener answers before a request reaches a service: one constructor each. */

export const AUTH_HELP = "send the node's API key as 'Authorization: Bearer <key>' (gRPC: metadata 'authorization')";

export function authRequired(keyWasSent: boolean): LlmlbError {
  return new LlmlbError("AUTH_REQUIRED", `${keyWasSent ? "invalid API key" : "missing API key"}: ${AUTH_HELP}`);
}

export function insufficientScope(label: string, held: string, needed: string, what: string): LlmlbError {
  return new LlmlbError(
    "INSUFFICIENT_SCOPE",
    `the API key "${label}" has scope "${held}", but ${what} needs "${needed}": use a key with that scope (LLMLB_API_KEYS_FILE)`,
    { key: label, scope: held, required_scope: needed },
  );
}

export function invalidRequestTarget(target: string, problem: string): LlmlbError {
  const shown = target.length > 200 ? `${target.slice(0, 200)}…` : target;
  return new LlmlbError("INVALID_REQUEST_TARGET", `request target ${JSON.stringify(shown)} ${problem}; send the plain path (e.g. /v1/models)`);
}

export function requestTooLarge(limitBytes: number, compressed: boolean): LlmlbError {
  return new LlmlbError(
    "REQUEST_TOO_LARGE",
    `the request is larger than the node's limit of ${formatBytes(limitBytes)}${compressed ? " (once decompressed)" : ""} (LLMLB_MAX_REQUEST_BYTES=${limitBytes})`,
    { limit_bytes: String(limitBytes) },
  );
}

export function tooManyStreams(limit: number, perClient: boolean): LlmlbError {
  return new LlmlbError(
    "TOO_MANY_STREAMS",
    perClient
      ? `this client already holds ${limit} open streams (watches, event streams), the limit per client address (LLMLB_MAX_STREAMS_PER_CLIENT); close one first`
      : `the node already serves ${limit} open streams (watches, event streams), its total limit (LLMLB_MAX_STREAMS); try again later`,
    { limit: String(limit), retry_after_seconds: "5" },
  );
}

export function hostNotAllowed(host: string): LlmlbError {
  return new LlmlbError(
    "HOST_NOT_ALLOWED",
    `Host ${JSON.stringify(host)} is not served by this node: a node bound to loopback answers only loopback names; add the name to LLMLB_ALLOWED_HOSTS to serve it`,
    { host },
  );
}

export function originNotAllowed(origin: string): LlmlbError {
  return new LlmlbError(
    "ORIGIN_NOT_ALLOWED",
    `requests from the web origin ${JSON.stringify(origin)} are refused: add it to LLMLB_CORS_ORIGINS to allow it`,
    { origin },
  );
}
