import type { Http2ServerRequest, Http2ServerResponse, OutgoingHttpHeaders } from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { ERROR_DOMAIN } from "../errors/reasons.js";
import { requestTooLarge } from "../errors/index.js";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../gen/google/rpc/status_pb.js";
import { encodeGrpcMessage, respecGrpcMessage } from "./grpc-message.js";

const INTERNAL = "13";
const INVALID_ARGUMENT = "3";
const RESOURCE_EXHAUSTED = "8";

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
  if (headers["grpc-status"] === INTERNAL && message.startsWith("parse binary:")) {
    setStatus(headers, INVALID_ARGUMENT, message, "INVALID_ARGUMENT");
    return;
  }
  const tooLarge = /larger than configured readMaxBytes (\d+)/.exec(message);
  if (headers["grpc-status"] === RESOURCE_EXHAUSTED && tooLarge) {
    const refusal = requestTooLarge(Number(tooLarge[1]), message.includes("decompress"));
    setStatus(headers, RESOURCE_EXHAUSTED, refusal.message, refusal.reason, refusal.metadata);
    return;
  }
  headers["grpc-message"] = encodeGrpcMessage(message);
}

/**
 * connect-es (2.1) answers a request it cannot read with its own status and no ErrorInfo: a body it
 * cannot decode as INTERNAL "parse binary: …", one over the size limit as RESOURCE_EXHAUSTED
 * "message size … readMaxBytes …". The first is the client's fault and goes out as
 * INVALID_ARGUMENT (clients and alerts must never read it as a server failure); both get the
 * ErrorInfo every error of this node carries (the size limit as REQUEST_TOO_LARGE, worded as on HTTP).
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
