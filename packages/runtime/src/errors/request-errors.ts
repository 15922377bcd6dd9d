import { LlmlbError } from "./llmlb-error.js";

/** INVALID_ARGUMENT naming the offending request field by its proto name. */
export function invalidField(field: string, problem: string): LlmlbError {
  return new LlmlbError("INVALID_ARGUMENT", `${field} ${problem}`, { field });
}

/** NOT_FOUND for a health check of a service the node does not serve (as grpc.health.v1 says), naming those it serves. */
export function serviceNotFound(service: string, served: readonly string[]): LlmlbError {
  return new LlmlbError("SERVICE_NOT_FOUND", `unknown service "${service}"; this node reports the health of ${served.map((s) => `"${s}"`).join(", ")}`, { service });
}

/** UNIMPLEMENTED for an RPC path that names no method of the node, saying where its methods are listed. */
export function unknownMethod(path: string): LlmlbError {
  return new LlmlbError(
    "UNIMPLEMENTED",
    `${path} is not a method of this node; list its services with gRPC reflection (grpcurl -plaintext <host:port> list) or read proto/ in the node's repository`,
    { path },
  );
}

/**
 * How deep objects and arrays may nest in a request's JSON. Deeper data overflows the stack where it
 * is later serialized or copied (V8's serializer on the inference runner's channel recurses and gives
 * up near 1,000 levels), and no schema or body a client means to send comes near it.
 */
export const MAX_JSON_DEPTH = 128;

/** Whether parsed JSON nests objects and arrays more than `max` levels deep; walked without recursion, so any depth is safe. */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const pending: Array<{ node: unknown; depth: number }> = [{ node: value, depth: 0 }];
  while (pending.length > 0) {
    const { node, depth } = pending.pop()!;
    if (!isJsonContainer(node)) continue;
    if (depth >= max) return true;
    for (const child of Object.values(node)) pending.push({ node: child, depth: depth + 1 });
  }
  return false;
}

/** An array or plain object, as JSON.parse makes them (a Buffer or a stream is not walked). */
function isJsonContainer(node: unknown): node is object {
  if (typeof node !== "object" || node === null) return false;
  const proto = Object.getPrototypeOf(node) as unknown;
  return Array.isArray(node) || proto === Object.prototype || proto === null;
}

/** A request field that carries JSON text, parsed; invalid or too deeply nested JSON is INVALID_ARGUMENT naming the field. */
export function parseJsonField(text: string, field: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalidField(field, "is not valid JSON");
  }
  if (nestsDeeperThan(value, MAX_JSON_DEPTH)) throw invalidField(field, `nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep`);
  return value;
}

/** A JSON request body that nests objects and arrays more than MAX_JSON_DEPTH levels deep. */
export function bodyTooDeep(): LlmlbError {
  return new LlmlbError("INVALID_ARGUMENT", `the JSON body nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep; no request of this API needs that many`);
}
