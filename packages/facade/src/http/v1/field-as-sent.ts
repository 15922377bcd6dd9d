import { LlmlbError, fromConnectError } from "@llmlb/runtime";

/**
 * The services name the gRPC request's fields (`inputs[0]`, `messages[2].tool_calls[0].arguments`);
 * a /v1 client sent its own shape. An error whose field `rename` maps (undefined: leave it) names the
 * field as the client sent it, in its metadata and in its message.
 */
export function withFieldAsSent(err: unknown, rename: (field: string) => string | undefined): unknown {
  const error = fromConnectError(err);
  const field = error.metadata.field;
  const asSent = field === undefined ? undefined : rename(field);
  if (field === undefined || asSent === undefined || asSent === field) return err;
  return new LlmlbError(error.reason, error.message.replace(field, asSent), { ...error.metadata, field: asSent }, { cause: err });
}

/** A stream whose error, thrown at once or mid-stream, goes through withFieldAsSent. */
export async function* streamWithFieldsAsSent<T>(stream: AsyncIterable<T>, rename: (field: string) => string | undefined): AsyncGenerator<T> {
  try {
    yield* stream;
  } catch (err) {
    throw withFieldAsSent(err, rename);
  }
}
