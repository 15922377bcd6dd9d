import { execFile } from "node:child_process";
import fs from "node:fs";
import tls from "node:tls";
import { promisify } from "node:util";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import OpenAI from "openai";
import { Agent, fetch as undiciFetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health } from "@llmlb/runtime/gen/grpc/health/v1/health_pb";
import { ModelCatalogService } from "@llmlb/runtime/gen/llmlb/node/v1/catalog_pb";
import { grpcJsClient, isolatedEnv, runCli, startTestNode, tempDir, type TestNode } from "../../../testkit/node/index.js";
import { makeTestCerts, signLeaf, type CertFiles } from "./helpers/test-certs.js";

const PYTHON = "/usr/bin/python3";
const KEY = "tls-node-key-0123456789";
const read = (file: string) => fs.readFileSync(file);

describe("TLS and mutual TLS on both ports", () => {
  let node: TestNode;
  let certs: CertFiles;
  let dir: string;
  let cleanup: () => void;
  beforeAll(async () => {
    ({ dir, cleanup } = tempDir("llmlb-tls-"));
    certs = makeTestCerts(dir);
    node = await startTestNode({
      LLMLB_API_KEY: KEY,
      LLMLB_TLS_CERT: certs.serverCert,
      LLMLB_TLS_KEY: certs.serverKey,
      LLMLB_TLS_CLIENT_CA: certs.ca,
    });
  });
  afterAll(async () => {
    await node?.stop();
    cleanup?.();
  });

  const mtls = () => grpc.credentials.createSsl(read(certs.ca), read(certs.clientKey), read(certs.clientCert));
  // grpc-js sends the target's host as the TLS server name, and Node warns (DEP0123) when it is an IP.
  const byName = { "grpc.ssl_target_name_override": "localhost" };

  it("serves gRPC over TLS to @grpc/grpc-js with a client certificate", async () => {
    expect(node.grpcUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const health = grpcJsClient(Health, node.grpcUrl, {}, mtls(), byName);
    const catalog = grpcJsClient(ModelCatalogService, node.grpcUrl, { authorization: `Bearer ${KEY}` }, mtls(), byName);
    try {
      await expect(health.unary("check", { service: "" })).resolves.toMatchObject({ status: 1 });
      await expect(catalog.unary("listModels", {})).resolves.toHaveProperty("models");
    } finally {
      health.close();
      catalog.close();
    }
  });

  it("refuses a gRPC client without a client certificate", async () => {
    const anonymous = grpcJsClient(Health, node.grpcUrl, {}, grpc.credentials.createSsl(read(certs.ca)), byName);
    try {
      await expect(anonymous.unary("check", { service: "" })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    } finally {
      anonymous.close();
    }
  });

  it("serves Python grpcio with a client certificate, and refuses it without one", async () => {
    const script = path.join(import.meta.dirname, "fixtures/python_tls_health.py");
    const address = node.grpcUrl.replace("https://", "");
    const run = async (...args: string[]) => JSON.parse((await promisify(execFile)(PYTHON, [script, address, certs.ca, KEY, ...args], { timeout: 60_000 })).stdout) as Record<string, unknown>;
    expect(await run(certs.clientCert, certs.clientKey)).toMatchObject({ health: 1 });
    expect(await run()).toMatchObject({ error: "UNAVAILABLE" });
  });

  it("serves the OpenAI API over HTTPS to the openai SDK with a client certificate", async () => {
    expect(node.httpUrl).toMatch(/^https:\/\//);
    const agent = new Agent({ connect: { ca: read(certs.ca), cert: read(certs.clientCert), key: read(certs.clientKey) } });
    const client = new OpenAI({
      baseURL: `${node.httpUrl}/v1`,
      apiKey: KEY,
      maxRetries: 0,
      fetch: ((url: string, init: object) => undiciFetch(url, { ...init, dispatcher: agent })) as unknown as typeof fetch,
    });
    try {
      const models = await client.models.list();
      expect(models.data).toEqual([]);
    } finally {
      await agent.close();
    }
    const noCert = new Agent({ connect: { ca: read(certs.ca) } });
    try {
      await expect(undiciFetch(`${node.httpUrl}/v0/health`, { dispatcher: noCert })).rejects.toThrow();
    } finally {
      await noCert.close();
    }
  });

  it("takes a new certificate on reload without a restart", async () => {
    const serialSeen = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ host: "127.0.0.1", port: Number(new URL(node.httpUrl).port), ca: read(certs.ca), cert: read(certs.clientCert), key: read(certs.clientKey) }, () => {
          resolve(socket.getPeerCertificate().serialNumber);
          socket.end();
        });
        socket.on("error", reject);
      });
    const before = await serialSeen();
    const renewed = signLeaf(dir, "server-renewed", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
    fs.copyFileSync(renewed.cert, certs.serverCert);
    fs.copyFileSync(renewed.key, certs.serverKey);
    node.reload();
    const after = await serialSeen();
    expect(after).not.toBe(before);
    const health = grpcJsClient(Health, node.grpcUrl, {}, mtls(), byName);
    try {
      await expect(health.unary("check", { service: "" })).resolves.toMatchObject({ status: 1 });
    } finally {
      health.close();
    }
  });
});

describe("the CLI against a TLS node", () => {
  let node: TestNode;
  let certs: CertFiles;
  let cleanup: () => void;
  let cliHome: ReturnType<typeof tempDir>;
  beforeAll(async () => {
    let dir: string;
    ({ dir, cleanup } = tempDir("llmlb-tls-cli-"));
    certs = makeTestCerts(dir);
    node = await startTestNode({ LLMLB_TLS_CERT: certs.serverCert, LLMLB_TLS_KEY: certs.serverKey });
    cliHome = tempDir("llmlb-tls-cli-home-");
  });
  afterAll(async () => {
    await node?.stop();
    cleanup?.();
    cliHome?.cleanup();
  });
  /** The CLI's environment for a node on `grpcUrl` serving `cert`, as the operator's configuration says. */
  const cliEnv = (grpcUrl: string, cert: { cert: string; key: string }, extra: Record<string, string> = {}) => ({
    ...isolatedEnv(cliHome.dir),
    LLMLB_GRPC_PORT: new URL(grpcUrl).port,
    LLMLB_TLS_CERT: cert.cert,
    LLMLB_TLS_KEY: cert.key,
    ...extra,
  });

  it("says the node's certificate is not trusted (not that no node runs, nor falls back to the store), and works once given the CA", async () => {
    const env = cliEnv(node.grpcUrl, { cert: certs.serverCert, key: certs.serverKey });
    const untrusted = await runCli(["ls"], env);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(new RegExp(`^llmlb-node: the node at ${node.grpcUrl.replace(/\./g, "\\.")} answers with a certificate this machine does not trust \\(.+\\); give its certificate or CA to the CLI with NODE_EXTRA_CA_CERTS=<file\\.pem> \\(NODE_CERTIFICATE_UNTRUSTED\\)\n$`));
    const trusted = await runCli(["ps"], { ...env, NODE_EXTRA_CA_CERTS: certs.ca });
    expect(trusted).toMatchObject({ code: 0 });
  });

  it("says so too for a trusted CA's certificate that is not for servers (a client certificate served by mistake)", async () => {
    const wrong = await startTestNode({ LLMLB_TLS_CERT: certs.clientCert, LLMLB_TLS_KEY: certs.clientKey });
    try {
      const run = await runCli(["ls"], cliEnv(wrong.grpcUrl, { cert: certs.clientCert, key: certs.clientKey }, { NODE_EXTRA_CA_CERTS: certs.ca }));
      expect(run.code).toBe(1);
      expect(run.stderr).toBe(`llmlb-node: the node at ${wrong.grpcUrl} answers with a certificate this machine does not trust (unsuitable certificate purpose); the node's certificate (LLMLB_TLS_CERT) must be valid now, name the host the CLI connects to and be meant for servers (NODE_CERTIFICATE_UNTRUSTED)\n`);
    } finally {
      await wrong.stop();
    }
  });

  it("does not ask a node that requires client certificates: ls works on the store in its own process, ps says why it cannot", async () => {
    const env = cliEnv(node.grpcUrl, { cert: certs.serverCert, key: certs.serverKey }, { LLMLB_TLS_CLIENT_CA: certs.ca });
    expect(await runCli(["ls"], env)).toMatchObject({ code: 0 });
    const ps = await runCli(["ps"], env);
    expect(ps.code).toBe(1);
    expect(ps.stderr).toBe(`llmlb-node: the node at ${node.grpcUrl} requires client certificates (LLMLB_TLS_CLIENT_CA), which the CLI does not present; use a gRPC client with a certificate (see SECURITY.md) (CLIENT_CERTIFICATE_REQUIRED)\n`);
  });
});
