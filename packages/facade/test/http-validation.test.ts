import zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestNode, type TestNode } from "../../../testkit/node/index.js";

interface ErrorBody { error: { message: string; type: string; param: string | null; code: string | null } }

describe("malformed HTTP requests get a 4xx that names the problem", () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode();
  });
  afterAll(async () => node?.stop());

  const post = (path: string, body: string, type = "application/json") =>
    fetch(`${node.httpUrl}${path}`, { method: "POST", headers: { "content-type": type }, body });

  it("malformed JSON → 400 invalid_json", async () => {
    const res = await post("/v1/chat/completions", "{not json");
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorBody;
    expect(body.error).toMatchObject({ type: "invalid_request_error", code: "invalid_json" });
    // What JSON.parse found wrong, not only that something was.
    expect(body.error.message).toMatch(/^malformed JSON body: .* at position 1$/);
    const cut = (await (await post("/v1/chat/completions", '{"model": "m", "messages": [')).json()) as ErrorBody;
    expect(cut.error.message).toMatch(/^malformed JSON body: .*(end of JSON input|position 28)/);
    // A prototype key is refused as such, not as malformed JSON.
    for (const poisoned of ['{"model":"m","messages":[],"__proto__":{"x":1}}', '{"model":"m","constructor":{"prototype":{"x":1}}}']) {
      const refused = (await (await post("/v1/chat/completions", poisoned)).json()) as ErrorBody;
      expect(refused.error).toMatchObject({ code: "invalid_json", message: 'the body has a "__proto__" key, or a "constructor" key holding "prototype", which is refused; remove it' });
    }
    const withCharset = await post("/v1/chat/completions", '{"model":"m","messages":[{"role":"user","content":"hi"}]}', "application/json; charset=utf-8");
    expect(((await withCharset.json()) as ErrorBody).error.code).toBe("model_not_found");
    const empty = (await (await post("/v1/chat/completions", "")).json()) as ErrorBody;
    expect(empty.error).toMatchObject({ code: "invalid_json", message: "the request body is empty; send a JSON object" });
  });

  it("a missing field is named in message and param", async () => {
    const res = await post("/v1/chat/completions", JSON.stringify({ model: "m" }));
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.param).toBe("messages");
    expect(body.error.message).toBe('missing required field "messages"');
    const nested = await post("/v1/chat/completions", JSON.stringify({ model: "m", messages: [{ content: "hi" }] }));
    expect(((await nested.json()) as ErrorBody).error).toMatchObject({ param: "messages[0].role", message: 'missing required field "messages[0].role"' });
  });

  it("a wrong type is rejected, not coerced, and the types allowed are named in words", async () => {
    const res = await post("/v1/chat/completions", JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }], max_tokens: "5" }));
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorBody).error).toMatchObject({ param: "max_tokens", message: 'invalid field "max_tokens": must be an integer or null' });
    const stream = await post("/v1/chat/completions", JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }], stream: "yes" }));
    expect(((await stream.json()) as ErrorBody).error.message).toBe('invalid field "stream": must be a boolean or null');
  });

  it("nested problems name the path", async () => {
    const res = await post("/v1/chat/completions", JSON.stringify({ model: "m", messages: [{ role: "wizard", content: "hi" }] }));
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorBody).error.param).toBe("messages[0].role");
  });

  it("an image part in a message is refused as such, naming the part and the way out", async () => {
    const content = [{ type: "text", text: "what is this?" }, { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }];
    const res = await post("/v1/chat/completions", JSON.stringify({ model: "m", messages: [{ role: "system", content: "be brief" }, { role: "user", content }] }));
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as ErrorBody;
    expect(error).toMatchObject({ param: "messages[1].content[1].type", code: "unsupported_content_part" });
    expect(error.message).toContain('"image_url" are not supported');
    expect(error.message).toContain("text only");

    // Text parts alone are still only checked for their shape.
    const textOnly = await post("/v1/chat/completions", JSON.stringify({ model: "m", messages: [{ role: "user", content: [{ type: "text" }] }] }));
    expect(((await textOnly.json()) as ErrorBody).error.code).toBe("invalid_request");
  });

  it("a field that takes several shapes is reported in the shape the client sent, not the first one allowed", async () => {
    const problem = async (extra: Record<string, unknown>, path = "/v1/chat/completions") => {
      const base = path === "/v1/chat/completions" ? { model: "m", messages: [{ role: "user", content: "hi" }] } : { model: "m" };
      const res = await post(path, JSON.stringify({ ...base, ...extra }));
      expect(res.status).toBe(400);
      const { error } = (await res.json()) as ErrorBody;
      return [error.param, error.message];
    };
    expect(await problem({ stop: [""] })).toEqual(["stop[0]", 'invalid field "stop[0]": must not be empty']);
    expect(await problem({ stop: ["ok", 5] })).toEqual(["stop[1]", 'invalid field "stop[1]": must be a string']);
    expect(await problem({ stop: 5 })).toEqual(["stop", 'invalid field "stop": must be a string, an array or null']);
    expect(await problem({ messages: [{ role: "user", content: [{ type: "text", text: "a", cache: true }] }] })).toEqual([
      "messages[0].content[0].cache",
      'field "messages[0].content[0].cache" is not supported by this node; remove it (README lists the fields and extensions it implements)',
    ]);
    expect(await problem({ prompt: [] }, "/v1/completions")).toEqual(["prompt", 'invalid field "prompt": must not be empty']);
    // The same again inside a branch: content (a string or a list of parts) of one input item.
    const responses = (input: unknown) => problem({ input }, "/v1/responses");
    expect(await responses([{ role: "user", content: 5 }])).toEqual(["input[0].content", 'invalid field "input[0].content": must be a string or an array']);
    expect(await responses([{ role: "user", content: [5] }])).toEqual(["input[0].content[0]", 'invalid field "input[0].content[0]": must be an object']);
    expect(await responses([{ role: "user", content: [{ type: "input_text", text: 5 }] }])).toEqual(["input[0].content[0].text", 'invalid field "input[0].content[0].text": must be a string']);
    // A fixed value or an object: both named, and an object missing its part is told what it misses.
    expect(await problem({ tool_choice: 5 })).toEqual(["tool_choice", 'invalid field "tool_choice": must be "none", "auto", "required", an object or null']);
    expect(await problem({ tool_choice: { type: "function" } })).toEqual(["tool_choice.function", 'missing required field "tool_choice.function"']);
  });

  it("token ids as embeddings input or completion prompt are refused as such, with the way out", async () => {
    for (const [path, body] of [
      ["/v1/embeddings", { model: "m", input: [[9906, 1917]] }],
      ["/v1/embeddings", { model: "m", input: [9906, 1917] }],
      ["/v1/completions", { model: "m", prompt: [9906, 1917] }],
    ] as const) {
      const res = await post(path, JSON.stringify(body));
      expect(res.status).toBe(400);
      const { error } = (await res.json()) as ErrorBody;
      expect(error.code, path).toBe("unsupported_token_input");
      expect(error.message).toContain("holds token ids; this node takes text only");
    }
    const langchain = (await (await post("/v1/embeddings", JSON.stringify({ model: "m", input: [[1, 2]] }))).json()) as ErrorBody;
    expect(langchain.error.message).toContain("check_embedding_ctx_length=False");
  });

  it("out-of-range sampling values are refused", async () => {
    const res = await post("/v1/completions", JSON.stringify({ model: "m", prompt: "x", temperature: 7 }));
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorBody).error.param).toBe("temperature");
  });

  it("null for an optional field is the field left out, as clients that serialise unset options send it", async () => {
    const chat = { model: "m", messages: [{ role: "user", content: "hi" }] };
    const bodies: Array<[string, object]> = [
      ["/v1/chat/completions", { ...chat, tool_choice: null, response_format: null, user: null, tools: [{ type: "function", function: { name: "f", description: null, parameters: null } }] }],
      ["/v1/embeddings", { model: "m", input: "x", encoding_format: null, user: null }],
    ];
    for (const [route, body] of bodies) {
      const res = await post(route, JSON.stringify(body));
      // Past validation: the model is the only thing wrong (this node has none).
      expect(((await res.json()) as ErrorBody).error.code, route).toBe("model_not_found");
      expect(res.status).toBe(404);
    }
  });

  it("an embeddings request with an unknown encoding is refused", async () => {
    const res = await post("/v1/embeddings", JSON.stringify({ model: "m", input: "x", encoding_format: "hex" }));
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorBody).error.param).toBe("encoding_format");
  });

  it("bodies over the limit → 413", async () => {
    const res = await post("/v1/chat/completions", JSON.stringify({ model: "m", messages: [{ role: "user", content: "x".repeat(5 * 1024 * 1024) }] }));
    expect(res.status).toBe(413);
    expect(((await res.json()) as ErrorBody).error.code).toBe("body_too_large");
  });

  it("a non-JSON content type → 415", async () => {
    const res = await post("/v1/chat/completions", "model=m", "application/x-www-form-urlencoded");
    expect(res.status).toBe(415);
    const asText = await post("/v1/chat/completions", JSON.stringify({ model: "m", messages: [] }), "text/plain");
    expect(asText.status).toBe(415);
    expect(((await asText.json()) as ErrorBody).error.message).toContain('"text/plain"');
  });

  it("a compressed REST body → 415 naming the encoding; a compressed Connect call still works", async () => {
    const body = zlib.gzipSync(JSON.stringify({ content: "hello" }));
    const res = await fetch(`${node.httpUrl}/tokenize`, { method: "POST", headers: { "content-type": "application/json", "content-encoding": "gzip" }, body });
    expect(res.status).toBe(415);
    const error = ((await res.json()) as ErrorBody).error;
    expect(error.code).toBe("unsupported_content_encoding");
    expect(error.message).toContain('"gzip"');
    const check = await fetch(`${node.httpUrl}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip", "connect-protocol-version": "1" },
      body: zlib.gzipSync(JSON.stringify({ service: "" })),
    });
    expect(await check.json()).toEqual({ status: "SERVING" });
  });

  it("a user, system or tool message without content is refused, naming it", async () => {
    for (const bad of [{ role: "user" }, { role: "user", content: null }, { role: "system", content: null }]) {
      const res = await post("/v1/chat/completions", JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }, bad] }));
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(((await res.json()) as ErrorBody).error.param).toBe("messages[1].content");
    }
  });

  it("bad list filters are refused", async () => {
    const res = await fetch(`${node.httpUrl}/v0/models?state=sleeping`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorBody).error.param).toBe("state");
  });

  it("unknown routes → OpenAI-shaped 404", async () => {
    const res = await fetch(`${node.httpUrl}/v1/nothing-here`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as ErrorBody).error.code).toBe("route_not_found");
  });
});
