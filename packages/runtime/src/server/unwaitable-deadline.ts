import type { IncomingHttpHeaders } from "node:http";
import { parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout } from "@connectrpc/connect/protocol-grpc";
import { MAX_TIMER_MS } from "../config/parse.js";

/** Each deadline header Connect reads (gRPC and gRPC-Web, Connect), with Connect's own parser of it. */
const DEADLINE_HEADERS = [
  ["grpc-timeout", parseGrpcTimeout],
  ["connect-timeout-ms", parseConnectTimeout],
] as const;

/**
 * A deadline further away than a Node.js timer can wait (about 24.8 days, e.g. a client's "30
 * days") would fire after 1 ms in Connect's handler and end the call with DEADLINE_EXCEEDED at
 * once. Such a call runs without a deadline instead, as it would in practice. Malformed values are
 * left for Connect to refuse.
 */
export function dropUnwaitableDeadline(headers: IncomingHttpHeaders): void {
  for (const [name, parse] of DEADLINE_HEADERS) {
    const value = headers[name];
    if (typeof value !== "string") continue;
    const { timeoutMs } = parse(value, Infinity);
    if (timeoutMs !== undefined && timeoutMs > MAX_TIMER_MS) delete headers[name];
  }
}
