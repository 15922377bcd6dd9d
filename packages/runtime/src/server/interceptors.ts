import { createHash, timingSafeEqual } from "node:crypto";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { toConnectError } from "../errors/index.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";

/** Every error leaving a handler — thrown at once or mid-stream — goes out with its ErrorInfo. */
export const errorInterceptor: Interceptor = (next) => async (req) => {
  try {
    const res = await next(req);
    if (!res.stream) return res;
    return { ...res, message: rethrowMapped(res.message) };
  } catch (err) {
    throw toConnectError(err);
  }
};

async function* rethrowMapped<T>(messages: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (err) {
    throw toConnectError(err);
  }
}

/** Constant-time check of an `Authorization: Bearer <key>` header value against the configured key. */
export function bearerMatches(header: string | null | undefined, apiKey: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header?.trim() ?? "");
  if (!match?.[1]) return false;
  const given = createHash("sha256").update(match[1]).digest();
  const expected = createHash("sha256").update(apiKey).digest();
  return timingSafeEqual(given, expected);
}

export const AUTH_HELP = "send the node's API key as 'Authorization: Bearer <key>' (gRPC: metadata 'authorization')";

/**
 * Requires the API key on every call when one is configured. grpc.health.v1.Health stays open so
 * load balancers and Kubernetes probes need no credentials; it reveals nothing but SERVING.
 */
export function authInterceptor(apiKey: string): Interceptor {
  return (next) => async (req) => {
    if (apiKey && req.service.typeName !== Health.typeName && !bearerMatches(req.header.get("authorization"), apiKey)) {
      const missing = !req.header.get("authorization");
      throw new ConnectError(`${missing ? "missing API key" : "invalid API key"}: ${AUTH_HELP}`, Code.Unauthenticated);
    }
    return next(req);
  };
}
