import type { Http2ServerRequest, Http2ServerResponse, OutgoingHttpHeaders } from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { ERROR_DOMAIN, type Reason } from "../errors/reasons.js";
import { requestTooLarge } from "../errors/index.js";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../gen/google/rpc/status_pb.js";
import { encodeGrpcMessage, respecGrpcMessage } from "./grpc-message.js";

const INTERNAL = "13";
const INVALID_ARGUMENT = "3";
const RESOURCE_EXHAUSTED = "8";

/** The ErrorInfo reason of a status connect-es wrote itself, by its gRPC code. */
const REASON_OF_CODE: Record<string, Reason> = {
  "1": "CANCELLED",
  [INVALID_ARGUMENT]: "INVALID_ARGUMENT",
  "4": "DEADLINE_EXCEEDED",
  "12": "UNIMPLEMENTED",
  [INTERNAL]: "INTERNAL",
};
/**
 * connect-es's statuses for a malformed request, which are the client's doing: INTERNAL (a server
 * failure to clients and alerts) for an undecodable body or a compressed message without
 * grpc-encoding, UNIMPLEMENTED (read as "no such method") for a unary call with no or two messages.
 */
const CLIENT_FAULT = /^(parse binary:|received compressed envelope, but do not know how to decompress|protocol error: (missing|received extra) input message)/;

/** Sets the status with a google.rpc.Status carrying one ErrorInfo, as every error of this node does. */
function setStatus(headers: OutgoingHttpHeaders, code: string, message: string, reason: string, metadata: Record<string, string> = {}): void {
  const info = create(ErrorInfoSchema, { reason, domain: ERROR_DOMAIN, metadata });
  const status = create(StatusSchema, { code: Number(code), message, details: [anyPack(ErrorInfoSchema, info)] });
  headers["grpc-status"] = code;
  headers["grpc-message"] = encodeGrpcMessage(message);
  headers["grpc-status-details-bin"] = Buffer.from(toBinary(StatusSchema, status)).toString("base64");
}

/**
 * A gRPC status (in trailers, or in the headers of a trailers-only answer): one connect-es itself
 * wrote for a request it could not read gets its ErrorInfo; every message is encoded the spec's way.
 */
function fixStatus(headers: OutgoingHttpHeaders | undefined): void {
  const raw = headers?.["grpc-message"];
  if (!headers || typeof raw !== "string") return;
  if (headers["grpc-status-details-bin"]) {
    respecGrpcMessage(headers);
    return;
  }
  const message = decodeURIComponent(raw);
  const code = String(headers["grpc-status"]);
  if (CLIENT_FAULT.test(message)) {
    setStatus(headers, INVALID_ARGUMENT, message, "INVALID_ARGUMENT");
    return;
  }
  const tooLarge = /larger than configured readMaxBytes (\d+)/.exec(message);
  if (code === RESOURCE_EXHAUSTED && tooLarge) {
    const refusal = requestTooLarge(Number(tooLarge[1]), message.includes("decompress"));
    setStatus(headers, RESOURCE_EXHAUSTED, refusal.message, refusal.reason, refusal.metadata);
    return;
  }
  const reason = REASON_OF_CODE[code];
  if (reason) setStatus(headers, code, message, reason);
  else headers["grpc-message"] = encodeGrpcMessage(message);
}

/**
 * connect-es (2.1) answers a request it cannot read with its own status and no ErrorInfo: a body it
 * cannot decode as INTERNAL "parse binary: …", a compressed message without grpc-encoding as
 * INTERNAL, one over the size limit as RESOURCE_EXHAUSTED "message size … readMaxBytes …", an
 * unknown compression or a missing message as UNIMPLEMENTED, a bad grpc-timeout or a cut envelope
 * as INVALID_ARGUMENT, a deadline as DEADLINE_EXCEEDED. Malformed requests (CLIENT_FAULT) are the
 * client's fault and go out as INVALID_ARGUMENT (never read as a server failure or a missing method);
 * all get the ErrorInfo every error of this node carries (the size limit as REQUEST_TOO_LARGE,
 * worded as on HTTP, the others with their code's name as reason).
 */
export function malformedRequestsAsInvalidArgument(
  handler: (req: Http2ServerRequest, res: Http2ServerResponse) => void,
): (req: Http2ServerRequest, res: Http2ServerResponse) => void {
  return (req, res) => {
    const addTrailers = res.addTrailers.bind(res);
    res.addTrailers = (headers: OutgoingHttpHeaders) => {
      fixStatus(headers);
      addTrailers(headers);
    };
    const writeHead = res.writeHead.bind(res) as (status: number, headers?: OutgoingHttpHeaders) => Http2ServerResponse;
    res.writeHead = ((status: number, headers?: OutgoingHttpHeaders) => {
      fixStatus(headers);
      return writeHead(status, headers);
    }) as Http2ServerResponse["writeHead"];
    handler(req, res);
  };
}
