import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { HostPolicy, KeyRing, httpAccess, normalisedPath, parseKeysFile, rpcAccess } from "../src/index.js";
import { tempDir } from "../../../testkit/node/index.js";

describe("request targets", () => {
  it("accepts plain paths and returns them without the query", () => {
    expect(normalisedPath("/v1/models?limit=2")).toBe("/v1/models");
    expect(normalisedPath("/v0/models/org/name/events")).toBe("/v0/models/org/name/events");
    expect(normalisedPath("/v0/models/blob/org%2Fname")).toBe("/v0/models/blob/org%2Fname");
    expect(normalisedPath("/v0/models/a%20b")).toBe("/v0/models/a%20b");
  });

  it.each([
    ["/%76%30/models", 'percent-encodes "v"'],
    ["/v0/mod%2Eels", 'percent-encodes "."'],
    ["/v0%2fmodels", "percent-encodes a path separator"],
    ["/v0/models/x%5c..", "percent-encodes a path separator"],
    ["/v0/./models", "dot segment"],
    ["/a/../v0/models", "dot segment"],
    ["/v0//models", "empty segment"],
    ["/v0/models#x", "fragment"],
    ["http://evil.example/v0/models", "not a path"],
    ["*", "not a path"],
    ["/v0/models/%zz", "malformed percent-escape"],
    ["/v0/models/%00", "control character"],
  ])("refuses %s", (target, problem) => {
    expect(() => normalisedPath(target)).toThrow(expect.objectContaining({ reason: "INVALID_REQUEST_TARGET", message: expect.stringContaining(problem) }));
  });
});

describe("scopes by route family", () => {
  it("maps every RPC by service and verb, admin for unknown state changes", () => {
    expect(rpcAccess("/grpc.health.v1.Health/Watch")).toBe("open");
    expect(rpcAccess("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")).toBe("read");
    expect(rpcAccess("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")).toBe("read");
    expect(rpcAccess("/llmlb.node.v1.InferenceService/Chat")).toBe("inference");
    expect(rpcAccess("/llmlb.node.v1.InferenceService/Rerank")).toBe("inference");
    expect(rpcAccess("/llmlb.node.v1.InferenceService/LoadModel")).toBe("admin");
    expect(rpcAccess("/llmlb.node.v1.InferenceService/ListLoadedModels")).toBe("read");
    expect(rpcAccess("/llmlb.node.v1.ModelCatalogService/WatchModels")).toBe("read");
    expect(rpcAccess("/llmlb.node.v1.ModelCatalogService/DeleteModel")).toBe("admin");
    expect(rpcAccess("/llmlb.node.v1.ResolverService/Resolve")).toBe("admin");
    expect(rpcAccess("/llmlb.node.v1.SomeFutureService/DoSomething")).toBe("admin");
    expect(rpcAccess("/v1/models")).toBeNull();
  });

  it("maps HTTP routes by method and prefix, admin for unknown state changes", () => {
    expect(httpAccess("GET", "/v0/health")).toBe("open");
    expect(httpAccess("GET", "/assets/*")).toBe("open");
    expect(httpAccess("POST", "/v0/health")).toBe("admin");
    expect(httpAccess("GET", "/metrics")).toBe("read");
    expect(httpAccess("POST", "/v1/chat/completions")).toBe("inference");
    expect(httpAccess("POST", "/v1/rerank")).toBe("inference");
    expect(httpAccess("POST", "/rerank")).toBe("inference");
    expect(httpAccess("POST", "/tokenize")).toBe("inference");
    expect(httpAccess("GET", "/v0/loaded")).toBe("read");
    expect(httpAccess("POST", "/v0/models/*")).toBe("admin");
    expect(httpAccess("DELETE", "/v0/models/*")).toBe("admin");
    expect(httpAccess("POST", "/api/anything")).toBe("admin");
    expect(httpAccess("POST", "/llmlb.node.v1.InferenceService/Embed")).toBe("inference");
  });
});

describe("the keys file", () => {
  it.each([
    ["{}", "the top level is not an array"],
    ["[{]", "not valid JSON"],
    ['[{"label":"a","key":"0123456789abcdef","scope":"root"}]', '"scope" must be'],
    ['[{"label":"a","scope":"read"}]', 'exactly one of "key" and "sha256"'],
    ['[{"label":"a","key":"short","scope":"read"}]', "at least 16 characters"],
    ['[{"label":"a","sha256":"xyz","scope":"read"}]', "64 hex digits"],
    ['[{"label":"a","key":"0123456789abcdef","scope":"read"},{"label":"a","key":"0123456789abcdeg","scope":"read"}]', "used twice"],
    ['[{"label":"a","key":"0123456789abcdef","scope":"read","extra":1}]', "unknown field(s) extra"],
  ])("refuses %s with a message naming the problem", (text, problem) => {
    expect(() => parseKeysFile("/keys.json", text)).toThrow(expect.objectContaining({ reason: "INVALID_CONFIG", message: expect.stringContaining(problem) }));
  });

  it("says where a syntax error is without quoting the file, whose text around it is someone's key", () => {
    const text = '[\n {"label":"ops","scope":"admin","key":NEW-ADMIN-SECRET-KEY-9999}\n]';
    const refusal = () => parseKeysFile("/keys.json", text);
    expect(refusal).toThrow(/^API keys file \/keys\.json: not valid JSON/);
    expect(refusal).not.toThrow(/NEW-ADMIN|SECRET|9999/);
    const trailingComma = () => parseKeysFile("/keys.json", '[\n {"label":"a","key":"0123456789abcdef","scope":"read",}\n]');
    expect(trailingComma).toThrow(/not valid JSON at line 2, column \d+\./);
    expect(trailingComma).not.toThrow(/0123456789abcdef/);
  });

  it("authenticates by key or digest, and keeps the old keys when a reload finds a bad file", () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = path.join(dir, "keys.json");
      fs.writeFileSync(file, '[{"label":"app","key":"0123456789abcdef","scope":"inference"}]');
      const ring = new KeyRing("single-admin-key", file);
      expect(ring.authenticate("Bearer single-admin-key")).toMatchObject({ kind: "key", key: { label: "default", scope: "admin" } });
      expect(ring.authenticate("Bearer 0123456789abcdef")).toMatchObject({ kind: "key", key: { label: "app", scope: "inference" } });
      expect(ring.authenticate("Bearer nope")).toEqual({ kind: "invalid" });
      expect(ring.authenticate(undefined)).toEqual({ kind: "missing" });
      fs.writeFileSync(file, "not json");
      expect(() => ring.reload()).toThrow(/not valid JSON/);
      expect(ring.authenticate("Bearer 0123456789abcdef")).toMatchObject({ kind: "key" });
      expect(new KeyRing("", "").authenticate(undefined)).toEqual({ kind: "disabled" });
    } finally {
      cleanup();
    }
  });
});

describe("Host and Origin", () => {
  it("serves only loopback names on a loopback node, plus LLMLB_ALLOWED_HOSTS", () => {
    const policy = new HostPolicy("127.0.0.1", ["node.internal"], []);
    for (const host of ["127.0.0.1:8080", "localhost:8080", "[::1]:8080", "node.internal:8080", "app.localhost"]) expect(() => policy.checkHost(host)).not.toThrow();
    for (const host of ["attacker.example:8080", "127.0.0.1.nip.io", "127.0.0.1:80@evil.example", "127.0.0.1:x", "[::1", "", undefined]) expect(() => policy.checkHost(host)).toThrow(/not served by this node/);
  });

  it("serves any name on a network-bound node unless names are listed", () => {
    expect(() => new HostPolicy("0.0.0.0", [], []).checkHost("10.0.0.5:8080")).not.toThrow();
    expect(() => new HostPolicy("0.0.0.0", ["node-a.rack"], []).checkHost("10.0.0.5:8080")).toThrow();
  });

  it("accepts same-origin and listed origins only", () => {
    const policy = new HostPolicy("127.0.0.1", [], ["https://ops.example/"]);
    expect(() => policy.checkOrigin("http://127.0.0.1:8080", "127.0.0.1:8080", undefined)).not.toThrow();
    expect(() => policy.checkOrigin("https://ops.example", "127.0.0.1:8080", undefined)).not.toThrow();
    expect(() => policy.checkOrigin("http://attacker.example", "127.0.0.1:8080", undefined)).toThrow(/LLMLB_CORS_ORIGINS/);
    expect(() => policy.checkOrigin("null", "127.0.0.1:8080", undefined)).toThrow();
    expect(() => policy.checkOrigin(undefined, "127.0.0.1:8080", "cross-site")).toThrow();
  });
});
