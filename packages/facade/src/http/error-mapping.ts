import { Code } from "@connectrpc/connect";
import { errorInfoOf, toConnectError } from "@llmlb/runtime";
import type { OpenAiErrorBody } from "./openai-error.js";

export interface HttpError {
  status: number;
  body: OpenAiErrorBody;
  headers: Record<string, string>;
}

const STATUS_BY_CODE: Partial<Record<Code, number>> = {
  [Code.Canceled]: 499,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 400,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 502,
  [Code.Unauthenticated]: 401,
};

/** Reasons whose HTTP status differs from their gRPC code's usual one. */
const STATUS_BY_REASON: Record<string, number> = {
  MODEL_IN_USE: 409,
  READ_ONLY_COPY: 409,
  INSUFFICIENT_DISK: 507,
  NOT_WRITABLE: 500,
  INSUFFICIENT_MEMORY: 503,
  INVALID_MODEL_FILE: 422,
  REQUEST_TOO_LARGE: 413,
};

/** OpenAI error codes that SDKs and users already know. */
const OPENAI_CODE_BY_REASON: Record<string, string> = {
  MODEL_NOT_SUPPORTED: "model_not_found",
  QUEUE_FULL: "rate_limit_exceeded",
  RATE_LIMITED: "rate_limit_exceeded",
  AUTH_REQUIRED: "invalid_api_key",
  REQUEST_TOO_LARGE: "body_too_large",
};

/** OpenAI answers a bad key with type invalid_request_error; SDKs match on it. */
const TYPE_BY_REASON: Record<string, string> = { AUTH_REQUIRED: "invalid_request_error" };

function typeFor(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/**
 * The one mapping from a service error (gRPC code + ErrorInfo reason) to an HTTP status, headers
 * and an OpenAI-shaped body. /v0, /v1 and mid-stream SSE errors all go through it.
 */
export function httpErrorOf(err: unknown): HttpError {
  // An LlmlbError thrown by a facade handler maps exactly like one that came over the wire.
  const info = errorInfoOf(toConnectError(err));
  const status = STATUS_BY_REASON[info.reason] ?? STATUS_BY_CODE[info.code] ?? 500;
  const headers: Record<string, string> = {};
  const retryAfter = info.metadata.retry_after_seconds;
  if (status === 429 || status === 503) headers["retry-after"] = retryAfter && /^\d+$/.test(retryAfter) ? retryAfter : "1";
  if (status === 400 || status === 404 || status === 401 || status === 403 || status === 409 || status === 422) {
    headers["x-should-retry"] = "false";
  }
  return {
    status,
    headers,
    body: {
      message: info.message || Code[info.code],
      type: TYPE_BY_REASON[info.reason] ?? typeFor(status),
      param: info.metadata.field ?? info.metadata.param ?? null,
      code: OPENAI_CODE_BY_REASON[info.reason] ?? info.reason.toLowerCase(),
    },
  };
}
