import net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { fromBinary } from "@bufbuild/protobuf";
import { createClient, Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ListenerGuard, LlmlbError, errorInterceptor, loadConfig, silentLogger, startGrpcServer } from "@llmlb/runtime";
import { ErrorInfoSchema } from "@llmlb/runtime/gen/google/rpc/error_details_pb";
import { Health, HealthCheckResponse_ServingStatus } from "@llmlb/runtime/gen/grpc/health/v1/health_pb";
import { ModelCatalogService } from "@llmlb/runtime/gen/llmlb/node/v1/catalog_pb";
import { StatusSchema } from "@llmlb/runtime/gen/google/rpc/status_pb";
import { createNodeClients, startHttpServer, startNode } from "../src/index.js";
import { grpcJsClient, isolatedEnv, spawnChildNode, startTestNode, tempDir, type TestNode } from "../../../testkit/node/index.js";


describe("gRPC (h2c) and HTTP/1.1 listeners", () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode();
  });
  afterAll(async () => node?.stop());

  it("answers grpc.health.v1 Check with SERVING to a @grpc/grpc-js client", async () => {
    const client = grpcJsClient(Health, node.grpcUrl);
    try {
      const res = await client.unary<{ status: number }>("check", { service: "" });
      expect(res.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      const svc = await client.unary<{ status: number }>("check", { service: "llmlb.node.v1.InferenceService" });
      expect(svc.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      await expect(client.unary("check", { service: "no.such.Service" })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    } finally {
      client.close();
    }
  });

  it("routes a catalog method for a @grpc/grpc-js client", async () => {
    const client = grpcJsClient(ModelCatalogService, node.grpcUrl);
    try {
      // Whatever the catalog answers, the call reached our handler: a grpc status from the server, not a transport error.
      const outcome = await client.unary("listModels", { pageSize: 5 }).then(
        (res) => ({ ok: true as const, res }),
        (err: grpc.ServiceError) => ({ ok: false as const, err }),
      );
      if (!outcome.ok) expect([grpc.status.UNIMPLEMENTED]).toContain(outcome.err.code);
      else expect(outcome.res).toHaveProperty("models");
    } finally {
      client.close();
    }
  });

  it("serves the same services to a Connect client over HTTP/1.1", async () => {
    const transport = createConnectTransport({ baseUrl: node.httpUrl, httpVersion: "1.1" });
    const health = createClient(Health, transport);
    expect((await health.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    const res = await fetch(`${node.httpUrl}/v0/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "SERVING", gpu: { device_count: 0, capability_score: 0 }, load: { active_requests: 0 } });
  });

  it("answers a health check of a service it does not serve with NOT_FOUND and its ErrorInfo, naming those it serves", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: node.grpcUrl }));
    const err = ConnectError.from(await health.check({ service: "no.such.Service" }).catch((e: unknown) => e));
    expect(err.code).toBe(Code.NotFound);
    expect(err.rawMessage).toContain('unknown service "no.such.Service"; this node reports the health of ""');
    // Every error of the node carries one (this one had none).
    expect(err.findDetails(ErrorInfoSchema)).toMatchObject([{ reason: "SERVICE_NOT_FOUND", metadata: { service: "no.such.Service" } }]);
  });

  it("streams health Watch over gRPC until the client cancels", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: node.grpcUrl }));
    const abort = new AbortController();
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const res of health.watch({ service: "" }, { signal: abort.signal })) {
          seen.push(res.status);
          abort.abort();
        }
      })(),
    ).rejects.toMatchObject({ code: Code.Canceled });
    expect(seen).toEqual([HealthCheckResponse_ServingStatus.SERVING]);
  });

  it("keeps a Connect stream over HTTP/1.1 whose deadline is further away than a timer can wait (30 days) open", async () => {
    // Sent by hand: connect-es's own client overflows the same timer and gives up after 1 ms.
    const abort = new AbortController();
    const res = await fetch(`${node.httpUrl}/grpc.health.v1.Health/Watch`, {
      method: "POST",
      headers: { "content-type": "application/connect+json", "connect-protocol-version": "1", "connect-timeout-ms": String(30 * 86_400_000) },
      body: Buffer.concat([Buffer.from([0, 0, 0, 0, 2]), Buffer.from("{}")]),
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let received = "";
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return "ended";
        received += decoder.decode(value, { stream: true });
      }
    })();
    // A deadline that overflowed Node's timer would end the stream with deadline_exceeded after 1 ms.
    const outcome = await Promise.race([reading, new Promise<string>((resolve) => setTimeout(() => resolve("still open"), 200))]);
    expect(received).toContain('{"status":"SERVING"}');
    expect(received).not.toContain("deadline_exceeded");
    expect(outcome).toBe("still open");
    abort.abort();
    await reading.catch(() => undefined);
    await reader.cancel().catch(() => undefined);
  });
});

describe("API key", () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode({ LLMLB_API_KEY: "s3cret-key" });
  });
  afterAll(async () => node?.stop());

  it("answers /v0/health on a fresh node without the key and without starting the inference runner", async () => {
    const health = async () => {
      const res = await fetch(`${node.httpUrl}/v0/health`);
      expect(res.status).toBe(200);
      return (await res.json()) as { status: string; gpu: Record<string, unknown> };
    };
    const fresh = await health();
    expect(fresh.status).toBe("SERVING");
    expect(fresh.gpu).toMatchObject({ probed: false, detail: expect.stringMatching(/^not probed yet/), device_count: 0 });
    // Had the answer needed a runner it would have waited for one to start.
    expect(node.runtime.engine.runnerPid()).toBeUndefined();
    expect((await health()).gpu.probed).toBe(false);

    // /api/system (behind the key) probes the GPU; from then on health reports what the runner knows.
    const system = await fetch(`${node.httpUrl}/api/system`, { headers: { authorization: "Bearer s3cret-key" } });
    expect(((await system.json()) as { device: { gpu_backend: string } }).device.gpu_backend).toBe("cpu");
    expect(node.runtime.engine.runnerPid()).toBeGreaterThan(0);
    const probed = await health();
    expect(probed.gpu).toMatchObject({ probed: true, device_count: 0 });
    expect(probed.gpu).not.toHaveProperty("detail");
  });

  it("rejects gRPC calls without the key, with UNAUTHENTICATED, and accepts them with it", async () => {
    const anonymous = grpcJsClient(ModelCatalogService, node.grpcUrl);
    const wrong = grpcJsClient(ModelCatalogService, node.grpcUrl, { authorization: "Bearer nope" });
    const keyed = grpcJsClient(ModelCatalogService, node.grpcUrl, { authorization: "Bearer s3cret-key" });
    try {
      await expect(anonymous.unary("listModels", {})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: expect.stringContaining("missing API key") });
      await expect(wrong.unary("listModels", {})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: expect.stringContaining("invalid API key") });
      const outcome = await keyed.unary("listModels", {}).catch((err: grpc.ServiceError) => err);
      expect((outcome as grpc.ServiceError).code).not.toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      anonymous.close();
      wrong.close();
      keyed.close();
    }
  });

  it("keeps gRPC health open for probes", async () => {
    const client = grpcJsClient(Health, node.grpcUrl);
    try {
      expect((await client.unary<{ status: number }>("check", { service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    } finally {
      client.close();
    }
  });

  it("answers HTTP /v0 without the key with 401 and an OpenAI-shaped body; health stays open", async () => {
    const res = await fetch(`${node.httpUrl}/v0/models`);
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: { message: string; type: string; code: string } };
    expect(body.error).toMatchObject({ type: "invalid_request_error", code: "invalid_api_key" });
    expect(body.error.message).toContain("Authorization: Bearer");
    const ok = await fetch(`${node.httpUrl}/v0/models`, { headers: { authorization: "Bearer s3cret-key" } });
    expect(ok.status).toBe(200);
    expect((await fetch(`${node.httpUrl}/v0/health`)).status).toBe(200);
  });

  it("requires the key on the Connect protocol too", async () => {
    const catalog = createClient(ModelCatalogService, createConnectTransport({ baseUrl: node.httpUrl, httpVersion: "1.1" }));
    const err = await catalog.listModels({}).catch((e: unknown) => ConnectError.from(e));
    expect((err as ConnectError).code).toBe(Code.Unauthenticated);
  });
});

describe("errors on the wire", () => {
  it("carries a google.rpc.ErrorInfo reason that a plain gRPC client can decode", async () => {
    const { dir, cleanup } = tempDir();
    // Our real server and interceptors; only the handler is the test's, throwing the node's error type.
    const server = await startGrpcServer({
      routes: (router) =>
        router.service(ModelCatalogService, {
          getModel: () => {
            throw new LlmlbError("MODEL_NOT_SUPPORTED", 'model "x" is not in the catalog', { model_id: "x" });
          },
        }),
      interceptors: [errorInterceptor],
      guard: new ListenerGuard(loadConfig({ env: isolatedEnv(dir) }), silentLogger()),
      host: "127.0.0.1",
      port: 0,
      logger: silentLogger(),
    });
    const client = grpcJsClient(ModelCatalogService, server.url);
    try {
      const err = (await client.unary("getModel", { modelId: "x" }).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.NOT_FOUND);
      expect(err.details).toBe('model "x" is not in the catalog');
      const [details] = err.metadata.get("grpc-status-details-bin") as Buffer[];
      const status = fromBinary(StatusSchema, details!);
      expect(status.details[0]?.typeUrl).toBe("type.googleapis.com/google.rpc.ErrorInfo");
      const info = fromBinary(ErrorInfoSchema, status.details[0]!.value);
      expect(info).toMatchObject({ reason: "MODEL_NOT_SUPPORTED", domain: "llmlb.node", metadata: { model_id: "x" } });
    } finally {
      client.close();
      await server.close();
      cleanup();
    }
  });
});

describe("start-up and shutdown", () => {
  it("ends health Watch streams on drain, over gRPC and HTTP/1.1, with NOT_SERVING as their last message", async () => {
    const node = await startTestNode();
    const grpcStatuses: number[] = [];
    const watchingOverGrpc = (async () => {
      const health = createClient(Health, createGrpcTransport({ baseUrl: node.grpcUrl }));
      for await (const res of health.watch({ service: "" })) grpcStatuses.push(res.status);
      return "ended";
    })();
    // A client that keeps the HTTP/1.1 response open as long as the server does.
    const res = await fetch(`${node.httpUrl}/grpc.health.v1.Health/Watch`, {
      method: "POST",
      headers: { "content-type": "application/connect+json", "connect-protocol-version": "1" },
      body: Buffer.concat([Buffer.from([0, 0, 0, 0, 2]), Buffer.from("{}")]),
    });
    expect(res.status).toBe(200);
    const watchingOverHttp = (async () => {
      let received = "";
      const decoder = new TextDecoder();
      for await (const chunk of res.body!) received += decoder.decode(chunk, { stream: true });
      return received;
    })();
    await expect.poll(() => grpcStatuses).toEqual([HealthCheckResponse_ServingStatus.SERVING]);

    // Before, the HTTP/1.1 Watch held stop() until the client left, however long.
    await node.stop();
    await expect(watchingOverGrpc).resolves.toBe("ended");
    expect(grpcStatuses).toEqual([HealthCheckResponse_ServingStatus.SERVING, HealthCheckResponse_ServingStatus.NOT_SERVING]);
    const overHttp = await watchingOverHttp;
    expect(overHttp.indexOf('{"status":"SERVING"}')).toBeGreaterThanOrEqual(0);
    expect(overHttp.indexOf('{"status":"NOT_SERVING"}')).toBeGreaterThan(overHttp.indexOf('{"status":"SERVING"}'));
    // The Connect end-of-stream message: the stream ended, it was not cut.
    expect(overHttp).not.toContain('"error"');
    expect(overHttp.endsWith("{}")).toBe(true);
  });

  it("drops a response a client holds open once the HTTP listener's grace has passed", async () => {
    const { dir, cleanup } = tempDir();
    let arrived!: () => void;
    const requestArrived = new Promise<void>((resolve) => (arrived = resolve));
    const http = await startHttpServer({
      interceptors: [],
      clients: createNodeClients(createConnectTransport({ baseUrl: "http://127.0.0.1:9", httpVersion: "1.1" })),
      guard: new ListenerGuard(loadConfig({ env: isolatedEnv(dir) }), silentLogger()),
      host: "127.0.0.1",
      port: 0,
      logger: silentLogger(),
      // A response that never completes, like a download to a client that stopped reading.
      register: [(app) => void app.get("/never", () => (arrived(), new Promise(() => undefined)))],
    });
    try {
      const answer = fetch(`${http.url}/never`).then(
        () => "answered",
        (err: Error) => `failed: ${err.message}`,
      );
      await requestArrived;
      await http.close(200);
      expect(await answer).toMatch(/^failed/);
    } finally {
      cleanup();
    }
  });

  it("names the port and the variable when a port is taken", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const { dir, cleanup } = tempDir();
    try {
      const config = loadConfig({ env: isolatedEnv(dir, { LLMLB_GRPC_PORT: String(port) }) });
      await expect(startNode(config, silentLogger())).rejects.toThrow(
        new RegExp(`^port ${port} on 127\\.0\\.0\\.1 is already in use: set LLMLB_GRPC_PORT \\(or --grpc-port\\) to a free port$`),
      );
    } finally {
      blocker.close();
      cleanup();
    }
  });

  it("names LLMLB_HOST when the host is not an address of this machine or does not resolve", async () => {
    const { dir, cleanup } = tempDir();
    try {
      for (const [host, problem] of [
        ["192.0.2.7", "192.0.2.7 is not an address of this machine"],
        ["no-such-host.invalid", "the host name no-such-host.invalid does not resolve"],
      ]) {
        const config = loadConfig({ env: isolatedEnv(dir, { LLMLB_HOST: host! }) });
        await expect(startNode(config, silentLogger())).rejects.toThrow(`cannot listen on ${host}: ${problem}; set LLMLB_HOST (or --host) to one of its addresses`);
      }
    } finally {
      cleanup();
    }
  });

  it("the CLI serves health, then drains and exits 0 on SIGTERM", async () => {
    const node = await spawnChildNode({}, 60_000);
    try {
      expect((await fetch(`${node.httpUrl}/v0/health`)).status).toBe(200);
      expect(await node.terminate()).toBe(0);
      expect(node.stderr()).toContain("draining in-flight calls");
    } finally {
      await node.stop();
    }
  });
});
