import { codeToHttpStatus, endStreamToJson, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { toConnectError } from "../errors/index.js";
import { respecGrpcMessage } from "../server/grpc-message.js";

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

/**
 * A refusal in the protocol the client speaks (gRPC, gRPC-Web, Connect unary or streaming), written
 * before the request body is read: the code, message and ErrorInfo arrive as from a handler.
 */
export function rpcRejection(contentType: string | undefined, err: unknown): RawAnswer {
  const error = toConnectError(err);
  const type = contentType ?? "";
  if (/^application\/grpc(-web)?([+;]|$)/i.test(type)) {
    const trailers = setTrailerStatus(new Headers(), error);
    const headers: Record<string, string> = { "content-type": type };
    trailers.forEach((value, key) => (headers[key] = value));
    respecGrpcMessage(headers);
    return { status: 200, headers, body: new Uint8Array() };
  }
  if (/^application\/connect\+/i.test(type)) {
    const json = new TextEncoder().encode(JSON.stringify(endStreamToJson(new Headers(), error, {})));
    const body = new Uint8Array(5 + json.length);
    body[0] = 0b10; // end-stream flag
    new DataView(body.buffer).setUint32(1, json.length);
    body.set(json, 5);
    return { status: 200, headers: { "content-type": type }, body };
  }
  return { status: codeToHttpStatus(error.code), headers: { "content-type": "application/json" }, body: errorToJsonBytes(error, {}) };
}
