import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import zlib from "node:zlib";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InferenceService } from "@llmlb/runtime/gen/llmlb/node/v1/inference_pb";
import { grpcJsClient, spawnChildNode, tempDir, type ChildNode } from "../../../testkit/node/index.js";
import { grpcFrame, rawGrpc } from "./helpers/raw-clients.js";

const KEY = "limits-admin-key-0123";
const LATE_KEY = "late-inference-key-0123";
const MiB = 1024 * 1024;

/** ~256 MiB of zeros, gzipped to a few hundred KiB, built without holding the 256 MiB. */
async function gzipBomb(inflatedBytes = 256 * MiB): Promise<Buffer> {
  const gzip = zlib.createGzip({ level: 9 });
  const parts: Buffer[] = [];
  gzip.on("data", (chunk: Buffer) => parts.push(chunk));
  const done = new Promise((resolve) => gzip.on("end", resolve));
  const zeros = Buffer.alloc(MiB);
  for (let sent = 0; sent < inflatedBytes; sent += MiB) {
    if (!gzip.write(zeros)) await new Promise((resolve) => gzip.once("drain", resolve));
  }
  gzip.end();
  await done;
  return Buffer.concat(parts);
}

/** Streams `bytes` of body with chunked encoding (no Content-Length to refuse up front); resolves with the status, or 0 if the node cut the connection. */
function chunkedPost(url: string, route: string, headers: Record<string, string>, bytes: number): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(`${url}${route}`, { method: "POST", headers: { "content-type": "application/json", ...headers } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    const pump = () => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once("drain", pump);
      }
      req.end();
    };
    pump();
  });
}

describe("limits before work, timeouts, and SIGHUP reload (a node in its own process)", () => {
  let node: ChildNode;
  let keysFile: string;
  let cleanup: () => void;
  beforeAll(async () => {
    const tmp = tempDir("llmlb-limits-");
    cleanup = tmp.cleanup;
    keysFile = path.join(tmp.dir, "keys.json");
    fs.writeFileSync(keysFile, JSON.stringify([{ label: "ops", key: KEY, scope: "admin" }]));
    node = await spawnChildNode({
      LLMLB_API_KEYS_FILE: keysFile,
      LLMLB_HEADERS_TIMEOUT: "1",
      LLMLB_BODY_TIMEOUT: "2",
    });
  });
  afterAll(async () => {
    await node?.stop();
    cleanup?.();
  });

  it("refuses oversized and gzip-bomb requests on every path while the node's memory stays flat", async () => {
    const bomb = await gzipBomb();
    expect(bomb.length).toBeLessThan(MiB);
    // Warm up the paths once, so their code and buffers are part of the baseline.
    await fetch(`${node.httpUrl}/v0/models`, { headers: { authorization: `Bearer ${KEY}` } });
    await rawGrpc(node.grpcUrl, "/llmlb.node.v1.ModelCatalogService/ListModels", { headers: { authorization: `Bearer ${KEY}` }, body: grpcFrame(new Uint8Array()) });
    const before = node.rss();
    const huge = { modelId: "tiny-chat", inputs: ["a".repeat(32 * MiB)] };

    // Without a key nothing is read: repeated, these cost nothing.
    for (let round = 0; round < 3; round++) {
      expect([401, 0]).toContain(await chunkedPost(node.httpUrl, "/v1/chat/completions", {}, 32 * MiB));
      const connect = await fetch(`${node.httpUrl}/llmlb.node.v1.ModelCatalogService/ListModels`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-encoding": "gzip" },
        body: bomb,
      });
      expect(connect.status).toBe(401);
      const grpcBomb = await rawGrpc(node.grpcUrl, "/llmlb.node.v1.ModelCatalogService/ListModels", { headers: { "grpc-encoding": "gzip" }, body: grpcFrame(bomb, true) });
      expect(grpcBomb.grpcStatus).toBe(grpc.status.UNAUTHENTICATED);
      const anonymous = grpcJsClient(InferenceService, node.grpcUrl);
      await expect(anonymous.unary("embed", huge)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      anonymous.close();
    }
    // With a key, each is read only up to the limit (4 MiB), compressed or inflated.
    expect([413, 0]).toContain(await chunkedPost(node.httpUrl, "/v1/chat/completions", { authorization: `Bearer ${KEY}` }, 32 * MiB));
    const connect = await fetch(`${node.httpUrl}/llmlb.node.v1.ModelCatalogService/ListModels`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip", authorization: `Bearer ${KEY}` },
      body: bomb,
    });
    expect(connect.status).toBe(429);
    expect(((await connect.json()) as { code: string }).code).toBe("resource_exhausted");
    const grpcBomb = await rawGrpc(node.grpcUrl, "/llmlb.node.v1.ModelCatalogService/ListModels", {
      headers: { authorization: `Bearer ${KEY}`, "grpc-encoding": "gzip" },
      body: grpcFrame(bomb, true),
    });
    expect(grpcBomb).toMatchObject({ grpcStatus: grpc.status.RESOURCE_EXHAUSTED, reason: "REQUEST_TOO_LARGE" });
    expect(grpcBomb.message).toMatch(/once decompressed.*LLMLB_MAX_REQUEST_BYTES=4194304/);
    // A body that is not a valid message (a string field holding bytes that are not UTF-8): the client's fault, with its ErrorInfo.
    const malformed = await rawGrpc(node.grpcUrl, "/llmlb.node.v1.ModelCatalogService/GetModel", {
      headers: { authorization: `Bearer ${KEY}` },
      body: grpcFrame(Uint8Array.from([0x0a, 0x02, 0xff, 0xfe])),
    });
    expect(malformed).toMatchObject({ grpcStatus: grpc.status.INVALID_ARGUMENT, reason: "INVALID_ARGUMENT" });
    expect(malformed.message).toMatch(/^parse binary: .*utf-8/);
    // What connect-es refuses itself gets the same ErrorInfo; a compressed message that names no
    // encoding is the client's fault too (it was INTERNAL, with no ErrorInfo, like the others).
    const protocolErrors = await Promise.all([
      rawGrpc(node.grpcUrl, "/llmlb.node.v1.ModelCatalogService/ListModels", { headers: { authorization: `Bearer ${KEY}` }, body: grpcFrame(new Uint8Array(), true) }),
      rawGrpc(node.grpcUrl, "/llmlb.node.v1.ModelCatalogService/ListModels", { headers: { authorization: `Bearer ${KEY}`, "grpc-encoding": "deflate" }, body: grpcFrame(new Uint8Array(), true) }),
      rawGrpc(node.grpcUrl, "/llmlb.node.v1.ModelCatalogService/ListModels", { headers: { authorization: `Bearer ${KEY}` }, body: Uint8Array.from([0, 0, 0, 0, 9, 1]) }),
      // A unary call with no message, or two: malformed, not a missing method (it was UNIMPLEMENTED).
      rawGrpc(node.grpcUrl, "/llmlb.node.v1.ModelCatalogService/ListModels", { headers: { authorization: `Bearer ${KEY}` } }),
      rawGrpc(node.grpcUrl, "/llmlb.node.v1.ModelCatalogService/ListModels", { headers: { authorization: `Bearer ${KEY}` }, body: Uint8Array.from([...grpcFrame(new Uint8Array()), ...grpcFrame(new Uint8Array())]) }),
    ]);
    expect(protocolErrors.map(({ grpcStatus, reason }) => [grpcStatus, reason])).toEqual([
      [grpc.status.INVALID_ARGUMENT, "INVALID_ARGUMENT"],
      [grpc.status.UNIMPLEMENTED, "UNIMPLEMENTED"],
      [grpc.status.INVALID_ARGUMENT, "INVALID_ARGUMENT"],
      [grpc.status.INVALID_ARGUMENT, "INVALID_ARGUMENT"],
      [grpc.status.INVALID_ARGUMENT, "INVALID_ARGUMENT"],
    ]);
    const keyed = grpcJsClient(InferenceService, node.grpcUrl, { authorization: `Bearer ${KEY}` });
    try {
      await expect(keyed.unary("embed", huge)).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, details: expect.stringContaining("4194304") });
    } finally {
      keyed.close();
    }
    const grown = node.rss() - before;
    expect(grown, `RSS grew by ${(grown / MiB).toFixed(1)} MiB`).toBeLessThan(32 * MiB);
    expect(node.process.exitCode).toBeNull();
  });

  it("drops a request whose body trickles in slower than the body timeout", async () => {
    const port = Number(new URL(node.httpUrl).port);
    const socket = net.connect(port, "127.0.0.1");
    let answer = "";
    socket.on("data", (d: Buffer) => (answer += d.toString()));
    socket.on("error", () => {});
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`);
    const drip = setInterval(() => socket.writable && socket.write(" "), 300);
    try {
      await new Promise<void>((resolve, reject) => {
        const guard = setTimeout(() => reject(new Error("the node kept the slow request open for 30 s")), 30_000);
        socket.once("close", () => {
          clearTimeout(guard);
          resolve();
        });
      });
    } finally {
      clearInterval(drip);
      socket.destroy();
    }
    // Answered as every other error is, so an SDK shows why (not Fastify's {"error":"Request Timeout"}).
    expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    const body = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as { error: { message: string; code: string } };
    expect(body.error).toMatchObject({ type: "invalid_request_error", code: "request_timeout" });
    expect(body.error.message).toMatch(/within 1 s \(LLMLB_HEADERS_TIMEOUT\) and all of it within 2 s \(LLMLB_BODY_TIMEOUT\)/);

    // Broken framing: a 400 in the same shape.
    const broken = await rawHttp(port, "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n");
    expect(broken).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(JSON.parse(broken.slice(broken.indexOf("\r\n\r\n") + 4))).toMatchObject({ error: { type: "invalid_request_error", code: "malformed_http" } });
    // Garbage pipelined behind a response still being sent (an event stream) closes the connection without writing into that response.
    const pipelined = await rawHttp(port, `GET /v0/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${KEY}\r\n\r\n`, "NOT HTTP\r\n\r\n");
    expect(pipelined).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(pipelined).not.toContain("HTTP/1.1 400");

    // The same on gRPC: a call whose body never ends is cancelled.
    const rpc = await rawGrpc(node.grpcUrl, "/llmlb.node.v1.InferenceService/Chat", { headers: { authorization: `Bearer ${KEY}` }, body: new Uint8Array([0, 0, 0, 0, 10]), endStream: false });
    expect(rpc.grpcStatus).not.toBe(grpc.status.OK);
  });

  it("reloads the keys file on SIGHUP to the pid its start-up log names, and keeps the old keys when the new file is broken", async () => {
    const list = () => fetch(`${node.httpUrl}/v1/models`, { headers: { authorization: `Bearer ${LATE_KEY}` } }).then((r) => r.status);
    expect(await list()).toBe(401);
    const serving = () => node.logs.find((l) => typeof l.msg === "string" && l.msg.startsWith("serving:"));
    await expect.poll(serving, { timeout: 10_000 }).toBeDefined();
    expect(serving()!.pid).toBe(node.process.pid);
    fs.writeFileSync(keysFile, JSON.stringify([{ label: "ops", key: KEY, scope: "admin" }, { label: "late", key: LATE_KEY, scope: "inference" }]));
    process.kill(Number(serving()!.pid), "SIGHUP");
    await expect.poll(list, { timeout: 10_000 }).toBe(200);

    fs.writeFileSync(keysFile, "[{ not json");
    node.process.kill("SIGHUP");
    await expect.poll(() => node.stderr(), { timeout: 10_000 }).toContain("API keys not reloaded");
    expect(await list()).toBe(200);
    expect(node.process.exitCode).toBeNull();
    expect(node.stderr()).not.toContain(LATE_KEY);
  });

  it("names the key's label in the log of an admin call, never the key", async () => {
    const res = await fetch(`${node.httpUrl}/v0/models/no-such-model`, { method: "DELETE", headers: { authorization: `Bearer ${KEY}` } });
    expect([401, 403]).not.toContain(res.status);
    await expect.poll(() => node.stderr(), { timeout: 10_000 }).toMatch(/"key":"ops","method":"DELETE","path":"\/v0\/models\/no-such-model","msg":"admin call"/);
    expect(node.stderr()).not.toContain(KEY);
  });
});

/** Writes `request` on a new connection (then `after`, once the answer has begun) and returns everything the node sent until it closed it. */
function rawHttp(port: number, request: string, after?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(request));
    let answer = "";
    socket.on("data", (d: Buffer) => {
      answer += d.toString();
      if (after !== undefined && answer.includes("\r\n\r\n")) {
        socket.write(after);
        after = undefined;
      }
    });
    socket.on("error", reject);
    socket.on("close", () => resolve(answer));
  });
}
