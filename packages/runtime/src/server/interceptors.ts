import type { Interceptor } from "@connectrpc/connect";
import { toConnectError } from "../errors/index.js";

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
