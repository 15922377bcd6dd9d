import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { localDiskError } from "./disk-errors.js";
import { ERROR_DOMAIN, REASONS, type Reason } from "./reasons.js";

export type ErrorMetadata = Record<string, string>;

/**
 * The one error type of the node: a stable reason (UPPER_SNAKE), the gRPC code that goes with it,
 * a message that says what was wrong and what to do, and string metadata for machines.
 */
export class LlmlbError extends Error {
  override readonly name = "LlmlbError";
  readonly code: Code;

  constructor(
    readonly reason: Reason,
    message: string,
    readonly metadata: ErrorMetadata = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = REASONS[reason];
  }
}

export function isLlmlbError(err: unknown, reason?: Reason): err is LlmlbError {
  return err instanceof LlmlbError && (reason === undefined || err.reason === reason);
}

/** Converts any thrown value into the ConnectError that goes on the wire, with one ErrorInfo. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof LlmlbError) {
    const info = create(ErrorInfoSchema, { reason: err.reason, domain: ERROR_DOMAIN, metadata: err.metadata });
    return new ConnectError(err.message, err.code, undefined, [{ desc: ErrorInfoSchema, value: info }], err);
  }
  if (isAbortError(err)) return new ConnectError("the request was cancelled", Code.Canceled, undefined, undefined, err);
  const disk = localDiskError(err);
  if (disk) return toConnectError(disk);
  return ConnectError.from(err, Code.Internal);
}

/** Reads the reason and metadata back from a ConnectError (client side) or an LlmlbError. */
export function errorInfoOf(err: unknown): { code: Code; reason: string; metadata: ErrorMetadata; message: string } {
  const connectError = err instanceof LlmlbError ? toConnectError(err) : ConnectError.from(err);
  const [info] = connectError.findDetails(ErrorInfoSchema);
  return {
    code: connectError.code,
    reason: info?.reason ?? Code[connectError.code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase(),
    metadata: info ? { ...info.metadata } : {},
    message: connectError.rawMessage,
  };
}

/** Turns a ConnectError from a remote runtime back into an LlmlbError, keeping its reason. */
export function fromConnectError(err: unknown): LlmlbError {
  if (err instanceof LlmlbError) return err;
  const { reason, metadata, message } = errorInfoOf(err);
  const known = (reason in REASONS ? reason : "INTERNAL") as Reason;
  return new LlmlbError(known, message, metadata, { cause: err });
}

export function isAbortError(err: unknown): boolean {
  return (
    err instanceof Error &&
    (err.name === "AbortError" || (err as { code?: unknown }).code === "ABORT_ERR")
  );
}
