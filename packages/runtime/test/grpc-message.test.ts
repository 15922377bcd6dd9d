import { describe, expect, it } from "vitest";
import { encodeGrpcMessage, respecGrpcMessage } from "../src/server/grpc-message.js";

describe("grpc-message encoding", () => {
  const text = 'model "x" already exists; pass id: 50% … é\nnext';

  it("encodes only what the gRPC spec encodes, so @grpc/grpc-js (decodeURI) and Connect (decodeURIComponent) both read the text as sent", () => {
    const encoded = encodeGrpcMessage(text);
    expect(encoded).toBe('model "x" already exists; pass id: 50%25 %E2%80%A6 %C3%A9%0Anext');
    expect(decodeURI(encoded)).toBe(text);
    expect(decodeURIComponent(encoded)).toBe(text);
  });

  it("re-encodes what connect-es wrote with encodeURIComponent, and leaves a value it cannot decode alone", () => {
    const headers: Record<string, unknown> = { "grpc-message": encodeURIComponent(text) };
    respecGrpcMessage(headers);
    expect(headers["grpc-message"]).toBe(encodeGrpcMessage(text));
    const odd = { "grpc-message": "%E2%80" };
    respecGrpcMessage(odd);
    expect(odd["grpc-message"]).toBe("%E2%80");
  });
});
