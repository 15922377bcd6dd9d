/**
 * grpc-message as the gRPC spec writes it: UTF-8, with only bytes outside 0x20–0x7E and "%"
 * percent-encoded. connect-es encodes it with encodeURIComponent, which also encodes ";", "/", ":"
 * and ","; @grpc/grpc-js decodes with decodeURI, which leaves those encoded, so its users read
 * "model x%3B pass id…". Spec encoding reads right in every gRPC client.
 */
export function encodeGrpcMessage(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Re-encodes a grpc-message that connect-es wrote (encodeURIComponent) the spec's way, in place. */
export function respecGrpcMessage(headers: Record<string, unknown>): void {
  const raw = headers["grpc-message"];
  if (typeof raw !== "string") return;
  let text: string;
  try {
    text = decodeURIComponent(raw);
  } catch {
    return;
  }
  headers["grpc-message"] = encodeGrpcMessage(text);
}
