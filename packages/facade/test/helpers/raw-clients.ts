import { fromBinary } from "@bufbuild/protobuf";
import { ErrorInfoSchema } from "@llmlb/runtime/gen/google/rpc/error_details_pb";
import { StatusSchema } from "@llmlb/runtime/gen/google/rpc/status_pb";
import http2 from "node:http2";
import net from "node:net";

/** Sends bytes exactly as given (no URL normalisation) and returns the status line's code and the body. */
export async function rawHttp(port: number, request: string): Promise<{ status: number; headers: string; body: string }> {
  const socket = net.connect(port, "127.0.0.1");
  socket.setTimeout(10_000, () => socket.destroy(new Error("no answer within 10 s")));
  let data = "";
  socket.on("data", (chunk: Buffer) => (data += chunk.toString("latin1")));
  socket.write(request);
  await new Promise<void>((resolve, reject) => {
    socket.once("close", () => resolve());
    socket.once("error", reject);
  });
  const [head = "", body = ""] = data.split("\r\n\r\n", 2);
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), headers: head, body };
}

/** A GET request line with Host and Connection: close; extra headers as given. */
export function getRequest(target: string, port: number, headers: Record<string, string> = {}): string {
  const lines = [`GET ${target} HTTP/1.1`, `Host: 127.0.0.1:${port}`, "Connection: close", ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return `${lines.join("\r\n")}\r\n\r\n`;
}

export interface GrpcAnswer {
  status: number;
  grpcStatus: number | undefined;
  message: string;
  /** The reason of the google.rpc.ErrorInfo in grpc-status-details-bin, when there is one. */
  reason?: string;
}

/** What one raw HTTP/2 request got: status, headers and trailers merged, and the body as text. */
export interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

/**
 * One request over a raw HTTP/2 stream with any :path and :authority, as a hostile client would send
 * it; body as given (or nothing, with endStream false, to hold the body back).
 */
export async function rawHttp2(
  url: string,
  headers: http2.OutgoingHttpHeaders,
  options: { body?: Uint8Array | string; endStream?: boolean } = {},
): Promise<H2Answer> {
  const session = http2.connect(url);
  session.on("error", () => {});
  try {
    const stream = session.request({ ":method": "POST", ...headers }, { endStream: false });
    return await new Promise<H2Answer>((resolve, reject) => {
      const answer: H2Answer = { status: 0, headers: {}, body: "" };
      const take = (received: http2.IncomingHttpHeaders) => {
        Object.assign(answer.headers, received);
        if (received[":status"]) answer.status = Number(received[":status"]);
      };
      stream.on("response", take);
      stream.on("trailers", take);
      stream.setEncoding("utf8").on("data", (chunk: string) => (answer.body += chunk));
      stream.on("close", () => resolve(answer));
      stream.on("error", reject);
      if (options.body) stream.write(options.body);
      if (options.endStream !== false) stream.end();
    });
  } finally {
    session.close();
  }
}

/** One gRPC call over a raw HTTP/2 stream (rawHttp2); body is the framed request. */
export async function rawGrpc(
  url: string,
  path: string,
  options: { headers?: Record<string, string>; body?: Uint8Array; endStream?: boolean; authority?: string } = {},
): Promise<GrpcAnswer> {
  const answer = await rawHttp2(
    url,
    {
      ":path": path,
      ...(options.authority ? { ":authority": options.authority } : {}),
      "content-type": "application/grpc+proto",
      te: "trailers",
      ...options.headers,
    },
    options,
  );
  const grpcStatus = answer.headers["grpc-status"];
  const message = answer.headers["grpc-message"];
  const details = answer.headers["grpc-status-details-bin"];
  const info = details ? fromBinary(StatusSchema, Buffer.from(String(details), "base64")).details.find((d) => d.typeUrl.endsWith("google.rpc.ErrorInfo")) : undefined;
  return {
    status: answer.status,
    grpcStatus: grpcStatus === undefined ? undefined : Number(grpcStatus),
    message: message ? decodeURIComponent(String(message)) : "",
    ...(info ? { reason: fromBinary(ErrorInfoSchema, info.value).reason } : {}),
  };
}

/** A gRPC length-prefixed message frame. */
export function grpcFrame(message: Uint8Array, compressed = false): Uint8Array {
  const frame = new Uint8Array(5 + message.length);
  frame[0] = compressed ? 1 : 0;
  new DataView(frame.buffer).setUint32(1, message.length);
  frame.set(message, 5);
  return frame;
}
