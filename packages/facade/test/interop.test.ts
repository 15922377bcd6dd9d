import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InferenceService } from "@llmlb/runtime/gen/llmlb/node/v1/inference_pb";
import { ResolverService } from "@llmlb/runtime/gen/llmlb/node/v1/resolver_pb";
import { startTestNode, tempDir, type TestNode } from "../../../testkit/node/index.js";
import { startTinyWorld, TINY_CHAT_ID, type TinyWorld } from "../../../testkit/world/tiny-world.js";

const root = path.resolve(import.meta.dirname, "../../..");
const PYTHON = "/usr/bin/python3";

describe("two nodes: B pulls through A's /v0/models/blob/:id", () => {
  let world: TinyWorld;
  let a: TestNode;
  let b: TestNode;
  beforeAll(async () => {
    world = await startTinyWorld();
    a = await startTestNode(world.env);
    // B cannot reach Hugging Face; its only other source is node A.
    b = await startTestNode({ ...world.env, HF_ENDPOINT: "http://127.0.0.1:9", LLMLB_ROUTER_URL: a.httpUrl, HF_TOKEN: "hf_secret_of_b" });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await world?.close();
  });

  it("B resolves a model only A has, then answers a chat with it", async () => {
    const pulled = await fetch(`${a.httpUrl}/v0/models/${TINY_CHAT_ID}/pull`, { method: "POST" });
    expect(pulled.status).toBe(202);
    await expect.poll(async () => ((await (await fetch(`${a.httpUrl}/v0/models/${TINY_CHAT_ID}`)).json()) as { state: string }).state, { timeout: 15_000 }).toBe("ready");
    world.hf.clearLog();

    const resolver = createClient(ResolverService, createGrpcTransport({ baseUrl: b.grpcUrl }));
    const events = [];
    for await (const res of resolver.resolve({ target: { case: "modelId", value: TINY_CHAT_ID } })) events.push(res.event);
    const failed = events.filter((e) => e.case === "sourceFailed").map((e) => e.value.source);
    expect(failed).toContain("huggingface");
    const done = events.find((e) => e.case === "done");
    expect(done?.value).toMatchObject({ source: "router-proxy", id: TINY_CHAT_ID });
    expect(world.hf.requests).toHaveLength(0);

    const chat = await fetch(`${b.httpUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: TINY_CHAT_ID, messages: [{ role: "user", content: "hi" }], max_tokens: 4, temperature: 0 }),
    });
    expect(chat.status).toBe(200);
    const body = (await chat.json()) as { choices: Array<{ message: { content: string } }>; usage: { completion_tokens: number } };
    expect(body.usage.completion_tokens).toBe(4);

    // Greedy output is the same on both nodes: B really has A's bytes.
    const onA = await fetch(`${a.httpUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: TINY_CHAT_ID, messages: [{ role: "user", content: "hi" }], max_tokens: 4, temperature: 0 }),
    });
    expect(((await onA.json()) as typeof body).choices[0]!.message.content).toBe(body.choices[0]!.message.content);
  });

  it("A's blob endpoint honours Range and ETag, and only for READY models", async () => {
    const head = await fetch(`${a.httpUrl}/v0/models/blob/${TINY_CHAT_ID}`, { method: "HEAD" });
    expect(head.status).toBe(200);
    const etag = head.headers.get("etag")!;
    expect(etag).toMatch(/^"[0-9a-f]{64}"$/);
    const ranged = await fetch(`${a.httpUrl}/v0/models/blob/${TINY_CHAT_ID}`, { headers: { range: "bytes=0-3" } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).toString("latin1")).toBe("GGUF");
    const size = Number(head.headers.get("content-length"));
    expect(ranged.headers.get("content-range")).toBe(`bytes 0-3/${size}`);
    expect((await fetch(`${a.httpUrl}/v0/models/blob/${TINY_CHAT_ID}`, { headers: { range: `bytes=${size + 10}-` } })).status).toBe(416);
    expect((await fetch(`${a.httpUrl}/v0/models/blob/tiny-embed`)).status).toBe(404);
    expect((await fetch(`${a.httpUrl}/v0/models/blob/..%2F..%2Fetc%2Fpasswd`)).status).toBe(404);
  });

  it("A's blob endpoint never offers bytes changed on disk under the digest they no longer have", async () => {
    const { path: file } = (await a.runtime.store.getModel(TINY_CHAT_ID))!;
    const fd = fs.openSync(file, "r+");
    fs.writeSync(fd, Buffer.alloc(4096, 0), 0, 4096, 8192);
    fs.closeSync(fd);
    // The copy is no longer the one installed: removed (to be fetched again), not served as verified.
    expect((await fetch(`${a.httpUrl}/v0/models/blob/${TINY_CHAT_ID}`, { method: "HEAD" })).status).toBe(404);
    expect(fs.existsSync(file)).toBe(false);
  });
});

describe("a client in another language", () => {
  let world: TinyWorld;
  let node: TestNode;
  let descriptorSet: string;
  let cleanup: () => void;
  beforeAll(async () => {
    world = await startTinyWorld();
    node = await startTestNode({ ...world.env, LLMLB_API_KEY: "py-key" });
    const tmp = tempDir("llmlb-descriptor-");
    cleanup = tmp.cleanup;
    descriptorSet = path.join(tmp.dir, "llmlb.binpb");
    execFileSync(path.join(root, "node_modules/.bin/buf"), ["build", "-o", descriptorSet], { cwd: root });
  });
  afterAll(async () => {
    await node?.stop();
    await world?.close();
    cleanup?.();
  });

  it("Python grpcio with messages from the buf descriptor set lists models and streams a chat", async () => {
    if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: apt-get install python3 python3-grpcio python3-protobuf`);
    try {
      execFileSync(PYTHON, ["-c", "import grpc, google.protobuf"]);
    } catch {
      throw new Error("Debian's python3-grpcio and python3-protobuf are missing: apt-get install python3-grpcio python3-protobuf");
    }
    const address = node.grpcUrl.replace("http://", "");
    const { stdout } = await promisify(execFile)(PYTHON, [path.join(import.meta.dirname, "fixtures/python_client.py"), descriptorSet, address, TINY_CHAT_ID, "py-key"], { timeout: 60_000 });
    const result = JSON.parse(stdout) as { models: string[]; states: Record<string, string>; deltas: string[]; finish_reason: string; usage: { prompt_tokens: number; completion_tokens: number } };
    expect(result.models).toEqual(expect.arrayContaining([TINY_CHAT_ID, "tiny-embed"]));
    expect(result.states[TINY_CHAT_ID]).toBe("MODEL_STATE_AVAILABLE");
    expect(result.deltas.join("").length).toBeGreaterThan(0);
    expect(result.finish_reason).toBe("length");
    expect(result.usage.completion_tokens).toBe(12);
    expect(result.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it.each(["v1", "v1alpha"])("Python grpcio with nothing but gRPC Server Reflection %s (as grpcurl) finds the services and their messages and streams a chat", async (version) => {
    const address = node.grpcUrl.replace("http://", "");
    const { stdout } = await promisify(execFile)(
      PYTHON, [path.join(import.meta.dirname, "fixtures/python_reflection_client.py"), descriptorSet, address, TINY_CHAT_ID, "py-key", version], { timeout: 60_000 },
    );
    const result = JSON.parse(stdout) as {
      unauthenticated: string | null; services: string[]; first_names: string[]; fetched_by_name: string[]; text: string; finish_reason: string;
      several: [string[], string[], { code: number; message: string }, string]; original_requests: string[]; unknown_method: [string, string]; symbols: Record<string, string | number>;
    };
    expect(result.symbols).toEqual({
      "llmlb.node.v1.ChatRequest.model_id": "llmlb/node/v1/inference.proto",
      "llmlb.node.v1.MODEL_STATE_AVAILABLE": "llmlb/node/v1/model.proto",
      "llmlb.node.v1.ChatRequest.LogitBiasEntry": "llmlb/node/v1/inference.proto",
      "google.rpc.ErrorInfo": "google/rpc/error_details.proto",
      "google.rpc.Status": "google/rpc/status.proto",
    });
    // Before, a bare HTTP 404 that grpcio reported as "Received http2 header with status: 404".
    expect(result.unknown_method[0]).toBe("UNIMPLEMENTED");
    expect(result.unknown_method[1]).toContain("/llmlb.node.v1.InferenceService/NoSuchMethod is not a method of this node; list its services with gRPC reflection");
    expect(result.unauthenticated).toBe("UNAUTHENTICATED"); // a read key is needed, as for ListModels
    expect(result.services).toEqual(expect.arrayContaining([
      "llmlb.node.v1.ModelCatalogService", "llmlb.node.v1.ResolverService", "llmlb.node.v1.InferenceService",
      "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
    ]));
    // The file asked for first, with its imports: nothing had to be asked for by name.
    expect(result.first_names).toEqual(["llmlb/node/v1/inference.proto", "google/protobuf/timestamp.proto"]);
    expect(result.fetched_by_name).toEqual([]);
    expect(result.text.length).toBeGreaterThan(0);
    expect(result.finish_reason).toBe("length");
    // One answer per question on one stream, in order; timestamp.proto went out with inference.proto
    // and is not sent again with model.proto, which imports it too.
    expect(result.original_requests).toEqual(["file_containing_symbol", "file_containing_symbol", "file_containing_symbol", "all_extension_numbers_of_type"]);
    expect(result.several[0]).toEqual(["llmlb/node/v1/inference.proto", "google/protobuf/timestamp.proto"]);
    expect(result.several[1]).toEqual(["llmlb/node/v1/catalog.proto", "llmlb/node/v1/model.proto"]);
    expect(result.several[2]).toMatchObject({ code: 5 });
    expect(result.several[2].message).toContain("llmlb.node.v1.NoSuchThing");
    expect(result.several[3]).toBe("llmlb.node.v1.ChatRequest");
  });
});

describe("the node's HTTP/2 ping (LLMLB_PING_INTERVAL, LLMLB_PING_TIMEOUT; seconds here, minutes by default)", () => {
  let world: TinyWorld;
  let node: TestNode;
  beforeAll(async () => {
    world = await startTinyWorld();
    node = await startTestNode({ ...world.env, LLMLB_PING_INTERVAL: "2", LLMLB_PING_TIMEOUT: "2", LLMLB_MAX_STREAMS_PER_CLIENT: "1" });
  });
  afterAll(async () => {
    await node?.stop();
    await world?.close();
  });

  it("keeps a connection whose answer drains slowly: its bytes still leaving are life", async () => {
    // A link of 20 KB/s from the node to the client, with backpressure, as a slow network gives it.
    const upstream = new URL(node.grpcUrl);
    const link = net.createServer((client) => {
      const server = net.connect(Number(upstream.port), upstream.hostname);
      client.pipe(server);
      server.on("data", (chunk: Buffer) => {
        server.pause();
        client.write(chunk);
        setTimeout(() => server.resume(), (chunk.length / 20_000) * 1000);
      });
      server.on("end", () => client.end());
      client.on("close", () => server.destroy());
      server.on("close", () => client.destroy());
      for (const socket of [client, server]) socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => link.listen(0, "127.0.0.1", resolve));
    try {
      const inference = createClient(InferenceService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${(link.address() as net.AddressInfo).port}`, readMaxBytes: 64 << 20 }));
      const content = Array.from({ length: 40_000 }, (_, i) => `w${(i * 7919).toString(36)}`).join(" ");
      const started = performance.now();
      const answer = await inference.tokenize({ modelId: TINY_CHAT_ID, content }, { timeoutMs: 60_000 });
      // Before, the ping waited behind the answer and the node cut the call (CANCEL) after about four
      // seconds; the whole answer takes longer to drain at this rate.
      expect(answer.tokens.length).toBeGreaterThan(80_000);
      expect(performance.now() - started).toBeGreaterThan(5_000);
    } finally {
      link.close();
    }
  });

  it("is closed once it no longer answers pings: its calls end and its stream slots are freed", async () => {
    const address = node.grpcUrl.replace("http://", "");
    const { stdout } = await promisify(execFile)(PYTHON, [path.join(import.meta.dirname, "fixtures/python_big_metadata.py"), address, "10"], { timeout: 60_000 });
    const result = JSON.parse(stdout) as { watch: string; watch_seconds: number; big: string; next_watch: string };
    // A metadata value over 64 KiB makes Node's HTTP/2 send GOAWAY and stop reading the connection,
    // with no event to say so. Before, the watch sharing it hung until its deadline (10 s), and its
    // slot stayed taken for ever: the next watch was RESOURCE_EXHAUSTED.
    expect(result.big).not.toBe("OK");
    expect(result.watch).toBe("UNAVAILABLE");
    expect(result.watch_seconds).toBeLessThan(8);
    expect(result.next_watch).toBe("OK");
  });
});
