import http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestNode, type TestNode } from "../../../testkit/node/index.js";
import { grpcFrame, rawGrpc } from "./helpers/raw-clients.js";

/** A Connect unary call with a JSON body over HTTP/2 without TLS (the gRPC listener). */
async function connectJsonOverH2(url: string, path: string, body: unknown): Promise<{ status: number; json: { code?: string; message?: string } }> {
  const session = http2.connect(url);
  session.on("error", () => {});
  try {
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/json" });
    stream.end(JSON.stringify(body));
    return await new Promise((resolve, reject) => {
      let status = 0;
      let text = "";
      stream.on("response", (headers) => (status = Number(headers[":status"])));
      stream.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
      stream.on("end", () => resolve({ status, json: JSON.parse(text) as { code?: string; message?: string } }));
      stream.on("error", reject);
    });
  } finally {
    session.close();
  }
}

describe("Connect JSON requests", () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode();
  });
  afterAll(async () => {
    await node?.stop();
  });

  it("refuse a key the message does not define, naming it, on both listeners (a typo never becomes an empty request)", async () => {
    // "text" for TokenizeRequest's "content": ignored, it would tokenize nothing and answer {}.
    const typo = { modelId: "tiny-chat", text: "Hello" };
    const overHttp = await fetch(`${node.httpUrl}/llmlb.node.v1.InferenceService/Tokenize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(typo),
    });
    expect(overHttp.status).toBe(400);
    const refused = (await overHttp.json()) as { code: string; message: string };
    expect(refused.code).toBe("invalid_argument");
    expect(refused.message).toContain('key "text" is unknown');

    const overH2 = await connectJsonOverH2(node.grpcUrl, "/llmlb.node.v1.InferenceService/Tokenize", typo);
    expect(overH2.status).toBe(400);
    expect(overH2.json).toMatchObject({ code: "invalid_argument" });
    expect(overH2.json.message).toContain('key "text" is unknown');

    // Known keys still work.
    const listed = await fetch(`${node.httpUrl}/llmlb.node.v1.ModelCatalogService/ListModels`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ pageSize: 2 }),
    });
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { models: unknown[] }).models.length).toBeGreaterThan(0);
  });

  it("binary protobuf keeps ignoring unknown fields, as protobuf does (a newer client still talks to this node)", async () => {
    // ListModelsRequest with field 999 (varint 7), which it does not define.
    const unknownField = new Uint8Array([0xb8, 0x3e, 0x07]);
    const answer = await rawGrpc(node.grpcUrl, "/llmlb.node.v1.ModelCatalogService/ListModels", { body: grpcFrame(unknownField) });
    expect(answer.grpcStatus).toBe(grpc.status.OK);
  });
});
