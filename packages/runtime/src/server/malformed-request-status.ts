import type { Http2ServerRequest, Http2ServerResponse, OutgoingHttpHeaders } from "node:http2";

const INTERNAL = "13";
const INVALID_ARGUMENT = "3";

/** A gRPC status (in trailers, or in the headers of a trailers-only answer) for a body connect-es could not decode. */
function fixStatus(headers: OutgoingHttpHeaders | undefined): void {
  const message = headers?.["grpc-message"];
  if (headers && headers["grpc-status"] === INTERNAL && typeof message === "string" && message.startsWith("parse%20binary%3A")) {
    headers["grpc-status"] = INVALID_ARGUMENT;
  }
}

/**
 * connect-es (2.1) answers a gRPC request body it cannot decode as a protobuf message with
 * INTERNAL "parse binary: …". The fault is the client's, so it goes out as INVALID_ARGUMENT with
 * the same message: clients and alerts must never read a malformed request as a server failure.
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
