import { createHash } from "node:crypto";
import fs from "node:fs";
import http2 from "node:http2";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { createClient, Code, ConnectError } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health } from "@llmlb/runtime/gen/grpc/health/v1/health_pb";
import { ModelCatalogService } from "@llmlb/runtime/gen/llmlb/node/v1/catalog_pb";
import { InferenceService } from "@llmlb/runtime/gen/llmlb/node/v1/inference_pb";
import { grpcJsClient, startTestNode, tempDir, type TestNode } from "../../../testkit/node/index.js";
import { getRequest, rawGrpc, rawHttp } from "./helpers/raw-clients.js";

const ADMIN_KEY = "admin-key-0123456789";
const INFERENCE_KEY = "inference-key-0123456789";
const READ_KEY = "read-key-0123456789ab";
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const portOf = (url: string) => Number(new URL(url).port);

function writeKeysFile(dir: string): string {
  const file = path.join(dir, "keys.json");
  fs.writeFileSync(
    file,
    JSON.stringify([
      { label: "ops", key: ADMIN_KEY, scope: "admin" },
      { label: "app", sha256: createHash("sha256").update(INFERENCE_KEY).digest("hex"), scope: "inference" },
      { label: "viewer", key: READ_KEY, scope: "read" },
    ]),
  );
  return file;
}

describe("auth on the routed path, with scoped keys", () => {
  let node: TestNode;
  let httpPort: number;
  let cleanup: () => void;
  beforeAll(async () => {
    const tmp = tempDir("llmlb-keys-");
    cleanup = tmp.cleanup;
    node = await startTestNode({ LLMLB_API_KEYS_FILE: writeKeysFile(tmp.dir) });
    httpPort = portOf(node.httpUrl);
  });
  afterAll(async () => {
    await node?.stop();
    cleanup?.();
  });

  // One route of each HTTP family: /v0, /v1, /metrics, SSE, and Connect on the HTTP port.
  const families = ["/v0/models", "/v1/models", "/metrics", "/v0/events", "/llmlb.node.v1.ModelCatalogService/ListModels"];
  const bypasses = (route: string) => [
    route.replace(/^\/(\w)/, (_m, c: string) => `/%${c.charCodeAt(0).toString(16)}`), // an encoded letter
    route.replace(/o/, "%6f"),
    route.replace(/^\//, "//"),
    `/./${route.slice(1)}`,
    `/x/..${route}`,
    `${route}#frag`,
    `http://evil.example${route}`,
    route.replace(/\/(?=[^/]*$)/, "%2f"), // an encoded separator
    route.toUpperCase(),
  ];

  it("refuses every bypass of every family with 400 or 401, never 200", async () => {
    for (const route of families) {
      const plain = await rawHttp(httpPort, getRequest(route, httpPort));
      expect(plain.status, route).toBe(401);
      for (const target of bypasses(route)) {
        const { status } = await rawHttp(httpPort, getRequest(target, httpPort));
        expect([400, 401], `${target} → ${status}`).toContain(status);
      }
    }
    const encoded = await rawHttp(httpPort, getRequest("/%76%30/models", httpPort, bearer(ADMIN_KEY)));
    expect(encoded.status).toBe(400);
    expect(encoded.body).toContain('percent-encodes \\"v\\", which must be sent as is');
  });

  it("refuses the same bypasses on gRPC, and never lets a call through", async () => {
    const method = "/llmlb.node.v1.ModelCatalogService/ListModels";
    expect((await rawGrpc(node.grpcUrl, method)).grpcStatus).toBe(grpc.status.UNAUTHENTICATED);
    for (const target of [...bypasses(method).filter((t) => !t.startsWith("http")), "/llmlb.node.v1.ModelCatalogService/%4cistModels"]) {
      const answer = await rawGrpc(node.grpcUrl, target);
      expect([grpc.status.INVALID_ARGUMENT, grpc.status.UNAUTHENTICATED, grpc.status.UNIMPLEMENTED], `${target}: ${answer.message}`).toContain(answer.grpcStatus);
    }
  });

  it("checks the key before reading any body byte (HTTP and gRPC)", async () => {
    // Headers announce 64 MiB; no body byte is sent, and the answer comes anyway.
    const http = await rawHttp(
      httpPort,
      `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${httpPort}\r\nContent-Type: application/json\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`,
    );
    expect(http.status).toBe(401);
    const rpc = await rawGrpc(node.grpcUrl, "/llmlb.node.v1.InferenceService/Chat", { endStream: false });
    expect(rpc.grpcStatus).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("keeps health probes and the dashboard open", async () => {
    expect((await fetch(`${node.httpUrl}/v0/health`)).status).toBe(200);
    expect([200, 503]).toContain((await fetch(`${node.httpUrl}/`)).status);
    const client = grpcJsClient(Health, node.grpcUrl);
    try {
      await expect(client.unary("check", { service: "" })).resolves.toMatchObject({ status: 1 });
    } finally {
      client.close();
    }
  });

  it("lets an inference key chat and list, but not delete, pull, register or load", async () => {
    const chat = await fetch(`${node.httpUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { ...bearer(INFERENCE_KEY), "content-type": "application/json" },
      body: JSON.stringify({ model: "no-such-model", messages: [{ role: "user", content: "hi" }] }),
    });
    expect([401, 403]).not.toContain(chat.status);
    expect((await fetch(`${node.httpUrl}/v1/models`, { headers: bearer(INFERENCE_KEY) })).status).toBe(200);
    for (const [method, route] of [["DELETE", "/v0/models/tiny-chat"], ["POST", "/v0/models/tiny-chat/pull"], ["POST", "/v0/models/register"], ["POST", "/v0/models/tiny-chat/load"]] as const) {
      const res = await fetch(`${node.httpUrl}${route}`, { method, headers: bearer(INFERENCE_KEY) });
      expect(res.status, `${method} ${route}`).toBe(403);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("insufficient_scope");
      expect(body.error.message).toContain('"app" has scope "inference"');
    }
    const catalog = grpcJsClient(ModelCatalogService, node.grpcUrl, bearer(INFERENCE_KEY));
    try {
      await expect(catalog.unary("deleteModel", { modelId: "tiny-chat" })).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
      await expect(catalog.unary("listModels", {})).resolves.toHaveProperty("models");
    } finally {
      catalog.close();
    }
  });

  it("lets a read key list but not chat, and an admin key do everything", async () => {
    expect((await fetch(`${node.httpUrl}/v0/models`, { headers: bearer(READ_KEY) })).status).toBe(200);
    const chat = await fetch(`${node.httpUrl}/v1/chat/completions`, { method: "POST", headers: { ...bearer(READ_KEY), "content-type": "application/json" }, body: "{}" });
    expect(chat.status).toBe(403);
    const del = await fetch(`${node.httpUrl}/v0/models/no-such-model`, { method: "DELETE", headers: bearer(ADMIN_KEY) });
    expect([401, 403]).not.toContain(del.status);
  });

  it("names keys by label in the metrics, never by value", async () => {
    const text = await (await fetch(`${node.httpUrl}/metrics`, { headers: bearer(ADMIN_KEY) })).text();
    expect(text).toMatch(/llmlb_api_requests_total\{key="app",outcome="forbidden"\} [1-9]/);
    expect(text).toMatch(/llmlb_api_requests_total\{key="ops",outcome="allowed"\} [1-9]/);
    for (const key of [ADMIN_KEY, INFERENCE_KEY, READ_KEY]) expect(text).not.toContain(key);
  });
});

describe("Host and Origin", () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode({ LLMLB_CORS_ORIGINS: "https://ops.example" });
  });
  afterAll(async () => node?.stop());

  it("a loopback node refuses a rebinding Host name on both ports", async () => {
    const port = portOf(node.httpUrl);
    const rebound = await rawHttp(port, getRequest("/v0/models", port, {}).replace(`Host: 127.0.0.1:${port}`, `Host: attacker.example:${port}`));
    expect(rebound.status).toBe(403);
    expect(rebound.body).toContain("LLMLB_ALLOWED_HOSTS");
    expect((await rawHttp(port, getRequest("/v0/models", port).replace("127.0.0.1", "localhost"))).status).toBe(200);
    const rpc = await rawGrpc(node.grpcUrl, "/llmlb.node.v1.ModelCatalogService/ListModels", { authority: `attacker.example:${portOf(node.grpcUrl)}` });
    expect(rpc.grpcStatus).toBe(grpc.status.PERMISSION_DENIED);
  });

  it("refuses a state-changing request from another web origin, even a CORS-simple one", async () => {
    const pull = await fetch(`${node.httpUrl}/v0/models/tiny-chat/pull`, { method: "POST", headers: { origin: "http://attacker.example" } });
    expect(pull.status).toBe(403);
    expect(((await pull.json()) as { error: { code: string } }).error.code).toBe("origin_not_allowed");
    const own = await fetch(`${node.httpUrl}/v0/models/no-such-model`, { method: "DELETE", headers: { origin: node.httpUrl } });
    expect(own.status).not.toBe(403);
  });

  it("answers a CORS preflight for an allowed origin and refuses another", async () => {
    const preflight = (origin: string) =>
      fetch(`${node.httpUrl}/v1/chat/completions`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
      });
    const allowed = await preflight("https://ops.example");
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://ops.example");
    expect(allowed.headers.get("access-control-allow-headers")).toContain("authorization");
    const refused = await preflight("https://attacker.example");
    expect(refused.status).toBe(403);
    expect(refused.headers.get("access-control-allow-origin")).toBeNull();
    const read = await fetch(`${node.httpUrl}/v1/models`, { headers: { origin: "https://ops.example" } });
    expect(read.headers.get("access-control-allow-origin")).toBe("https://ops.example");
  });

  it("lets a browser on an allowed origin read the node's refusals (401 without the key)", async () => {
    const keyed = await startTestNode({ LLMLB_CORS_ORIGINS: "https://ops.example", LLMLB_API_KEY: "sk-cors-key-1234" });
    try {
      const refused = await fetch(`${keyed.httpUrl}/v0/models`, { headers: { origin: "https://ops.example" } });
      expect(refused.status).toBe(401);
      expect(refused.headers.get("access-control-allow-origin")).toBe("https://ops.example");
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("invalid_api_key");
      const foreign = await fetch(`${keyed.httpUrl}/v0/models`, { headers: { origin: "https://attacker.example" } });
      expect(foreign.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await keyed.stop();
    }
  });
});

describe("stream caps", () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode({ LLMLB_MAX_STREAMS_PER_CLIENT: "3", LLMLB_MAX_STREAMS: "5", LLMLB_MAX_CONCURRENT_STREAMS: "16" });
  });
  afterAll(async () => node?.stop());

  it("caps open watches per client address across gRPC and SSE, and frees a slot when one closes", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: node.grpcUrl }));
    const controllers: AbortController[] = [];
    const watch = async () => {
      const controller = new AbortController();
      controllers.push(controller);
      const iterator = health.watch({ service: "" }, { signal: controller.signal })[Symbol.asyncIterator]();
      await iterator.next();
      return iterator;
    };
    try {
      for (let i = 0; i < 3; i++) await watch();
      const refused = await watch().catch((err: unknown) => ConnectError.from(err));
      expect(refused).toMatchObject({ code: Code.ResourceExhausted });
      expect((refused as ConnectError).rawMessage).toContain("LLMLB_MAX_STREAMS_PER_CLIENT");
      const sse = await fetch(`${node.httpUrl}/v0/events`);
      expect(sse.status).toBe(429);
      controllers[0]!.abort();
      await expect.poll(async () => {
        const res = await fetch(`${node.httpUrl}/v0/events`);
        await res.body?.cancel();
        return res.status;
      }, { timeout: 5000 }).toBe(200);
    } finally {
      for (const c of controllers) c.abort();
    }
  });

  it("announces the concurrent-stream limit in the HTTP/2 settings", async () => {
    const session = http2.connect(node.grpcUrl);
    try {
      const settings = await new Promise<http2.Settings>((resolve) => session.once("remoteSettings", resolve));
      expect(settings.maxConcurrentStreams).toBe(16);
    } finally {
      session.close();
    }
  });
});

describe("one input validation for gRPC and HTTP", () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode();
  });
  afterAll(async () => node?.stop());

  const post = async (route: string, body: unknown) => {
    const res = await fetch(`${node.httpUrl}${route}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    return { status: res.status, message: ((await res.json()) as { error: { message: string } }).error.message };
  };

  it("refuses the same oversized requests with the same message on both", async () => {
    const inference = grpcJsClient(InferenceService, node.grpcUrl);
    const grpcMessage = async (method: "embed" | "chat", request: unknown) => {
      if (method === "embed") return ((await inference.unary("embed", request).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError);
      return new Promise<grpc.ServiceError>((resolve) => {
        const call = inference.stream("chat", request);
        call.on("data", () => {});
        call.on("error", (err: grpc.ServiceError) => resolve(err));
        call.on("end", () => resolve({ code: grpc.status.OK, details: "" } as grpc.ServiceError));
      });
    };
    const user = (content: string) => [{ role: "user", content }];
    try {
      const cases = [
        {
          grpc: ["embed", { modelId: "tiny-embed", inputs: Array.from({ length: 2049 }, () => "x") }] as const,
          http: ["/v1/embeddings", { model: "tiny-embed", input: Array.from({ length: 2049 }, () => "x") }] as const,
          message: "inputs holds 2049 texts; at most 2048 per request",
        },
        {
          grpc: ["chat", { modelId: "tiny-chat", messages: user("hi"), adapterIds: Array.from({ length: 9 }, (_, i) => `a${i}`) }] as const,
          http: ["/v1/chat/completions", { model: "tiny-chat", messages: user("hi"), adapters: Array.from({ length: 9 }, (_, i) => `a${i}`) }] as const,
          message: "adapter_ids names 9 adapters; at most 8",
        },
        {
          grpc: ["chat", { modelId: "tiny-chat", messages: user("x".repeat(1536 * 1024)) }] as const,
          http: ["/v1/chat/completions", { model: "tiny-chat", messages: user("x".repeat(1536 * 1024)) }] as const,
          message: `messages holds ${1536 * 1024} bytes of text; at most 1048576`,
        },
        {
          grpc: ["chat", { modelId: "tiny-chat", messages: Array.from({ length: 4097 }, () => ({ role: "user", content: "x" })) }] as const,
          http: ["/v1/chat/completions", { model: "tiny-chat", messages: Array.from({ length: 4097 }, () => ({ role: "user", content: "x" })) }] as const,
          message: "messages holds 4097 messages; at most 4096",
        },
      ];
      for (const c of cases) {
        const viaGrpc = await grpcMessage(c.grpc[0], c.grpc[1]);
        expect(viaGrpc.code, c.message).toBe(grpc.status.INVALID_ARGUMENT);
        expect(viaGrpc.details).toContain(c.message);
        const viaHttp = await post(c.http[0], c.http[1]);
        expect(viaHttp.status, c.message).toBe(400);
        expect(viaHttp.message).toContain(c.message);
      }
    } finally {
      inference.close();
    }
  });
});
