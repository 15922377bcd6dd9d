import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestNode, type TestNode } from "../../../testkit/node/index.js";
import { grpcFrame, rawGrpc, rawHttp2 } from "./helpers/raw-clients.js";

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

    const overH2 = await rawHttp2(node.grpcUrl, { ":path": "/llmlb.node.v1.InferenceService/Tokenize", "content-type": "application/json" }, { body: JSON.stringify(typo) });
    expect(overH2.status).toBe(400);
    const refusedH2 = JSON.parse(overH2.body) as { code: string; message: string };
    expect(refusedH2.code).toBe("invalid_argument");
    expect(refusedH2.message).toContain('key "text" is unknown');

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
