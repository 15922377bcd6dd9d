import type { IncomingHttpHeaders } from "node:http2";
import { MAX_TIMER_MS } from "../config/parse.js";

const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000001 };

/**
 * A deadline further away than a Node.js timer can wait (about 24.8 days, e.g. a client's "30
 * days") would fire after 1 ms in Connect's handler and end the call with DEADLINE_EXCEEDED at
 * once. Such a call runs without a deadline instead, as it would in practice. Malformed values are
 * left for Connect to refuse.
 */
export function dropUnwaitableDeadline(headers: IncomingHttpHeaders): void {
  const grpc = headers["grpc-timeout"];
  const match = typeof grpc === "string" ? GRPC_TIMEOUT.exec(grpc) : null;
  if (match && Number(match[1]) * UNIT_MS[match[2]!]! > MAX_TIMER_MS) delete headers["grpc-timeout"];
  const connect = headers["connect-timeout-ms"];
  if (typeof connect === "string" && /^\d{1,10}$/.test(connect) && Number(connect) > MAX_TIMER_MS) delete headers["connect-timeout-ms"];
}
