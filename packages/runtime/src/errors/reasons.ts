import { Code } from "@connectrpc/connect";

/** Domain of every google.rpc.ErrorInfo this node sends. */
export const ERROR_DOMAIN = "llmlb.node";

/**
 * Every stable error reason with the gRPC code it travels with. Callers branch on the reason,
 * never on message text. The proto service comments document the same list.
 */
export const REASONS = {
  INVALID_ARGUMENT: Code.InvalidArgument,
  INVALID_MODEL_ID: Code.InvalidArgument,
  INVALID_ADAPTER_REF: Code.InvalidArgument,
  INVALID_REPO: Code.InvalidArgument,
  INVALID_PAGE_TOKEN: Code.InvalidArgument,
  INVALID_CONFIG: Code.InvalidArgument,
  INVALID_REQUEST_TARGET: Code.InvalidArgument,
  INVALID_CHAT_TEMPLATE: Code.InvalidArgument,
  TOOLS_UNSUPPORTED: Code.InvalidArgument,
  MODEL_NOT_SUPPORTED: Code.NotFound,
  FILE_NOT_FOUND: Code.NotFound,
  ADAPTER_NOT_FOUND: Code.NotFound,
  REPO_NOT_FOUND: Code.NotFound,
  /** grpc.health.v1.Health/Check for a service the node does not serve. */
  SERVICE_NOT_FOUND: Code.NotFound,
  REVISION_NOT_FOUND: Code.NotFound,
  MODEL_ALREADY_EXISTS: Code.AlreadyExists,
  MODEL_IN_USE: Code.FailedPrecondition,
  READ_ONLY_COPY: Code.FailedPrecondition,
  /** A file or directory of the node's own (home, models, node.db) cannot be written: read-only or permissions. */
  NOT_WRITABLE: Code.FailedPrecondition,
  NO_GGUF_FILES: Code.FailedPrecondition,
  CAPABILITY_MISSING: Code.FailedPrecondition,
  MODEL_UNSUPPORTED: Code.FailedPrecondition,
  INVALID_MODEL_FILE: Code.FailedPrecondition,
  UNVERIFIABLE_FILE: Code.FailedPrecondition,
  FILE_TOO_LARGE: Code.FailedPrecondition,
  ALL_SOURCES_FAILED: Code.Unavailable,
  MODEL_NOT_READY: Code.Unavailable,
  SOURCE_UNAVAILABLE: Code.Unavailable,
  ENGINE_CRASHED: Code.Unavailable,
  NODE_NOT_RUNNING: Code.Unavailable,
  /** The CLI reached a node over TLS whose certificate this machine does not trust. */
  NODE_CERTIFICATE_UNTRUSTED: Code.Unavailable,
  /** The CLI cannot reach a node that requires client certificates (mutual TLS). */
  CLIENT_CERTIFICATE_REQUIRED: Code.Unauthenticated,
  CHECKSUM_MISMATCH: Code.DataLoss,
  SIZE_MISMATCH: Code.DataLoss,
  INSUFFICIENT_DISK: Code.ResourceExhausted,
  INSUFFICIENT_MEMORY: Code.ResourceExhausted,
  QUEUE_FULL: Code.ResourceExhausted,
  RATE_LIMITED: Code.ResourceExhausted,
  REQUEST_TOO_LARGE: Code.ResourceExhausted,
  TOO_MANY_STREAMS: Code.ResourceExhausted,
  LOCK_WAIT_TIMEOUT: Code.DeadlineExceeded,
  /** The call's own deadline (grpc-timeout) passed before it was answered. */
  DEADLINE_EXCEEDED: Code.DeadlineExceeded,
  /** Another node of the fleet holds the lease on downloading this model from the hub (the resolver then follows it). */
  DOWNLOADING_ON_PEER: Code.Unavailable,
  GATED_REPO: Code.PermissionDenied,
  ACCESS_DENIED: Code.PermissionDenied,
  INSUFFICIENT_SCOPE: Code.PermissionDenied,
  HOST_NOT_ALLOWED: Code.PermissionDenied,
  ORIGIN_NOT_ALLOWED: Code.PermissionDenied,
  REDIRECT_REFUSED: Code.PermissionDenied,
  AUTH_REQUIRED: Code.Unauthenticated,
  CANCELLED: Code.Canceled,
  UNIMPLEMENTED: Code.Unimplemented,
  /** The model's output broke the schema its grammar was built from (node-llama-cpp's grammar is looser than its own check). */
  INVALID_MODEL_OUTPUT: Code.Internal,
  INTERNAL: Code.Internal,
} as const satisfies Record<string, Code>;

export type Reason = keyof typeof REASONS;
