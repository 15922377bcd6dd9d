import fs from "node:fs";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorInfoOf } from "@llmlb/runtime";
import { ResolverService } from "@llmlb/runtime/gen/llmlb/node/v1/resolver_pb";
import { parseGithubRef } from "../src/github-adapter/index.js";
import { startTestNode, type TestNode } from "../../../testkit/node/index.js";
import { startGithubStandin, type GithubStandin } from "../../../testkit/standins/index.js";
import { startTinyWorld, TINY_CHAT_ID, tinyLora, type TinyWorld } from "../../../testkit/world/tiny-world.js";

const REF = "github:acme/adapters@v1/style.gguf";
const ADAPTER_ID = "github--acme--adapters--v1--style.gguf";

async function failureOf(promise: Promise<unknown>) {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  if (!err) throw new Error("expected a failure");
  return errorInfoOf(err);
}

/** Runs Resolve for an adapter reference to its end. */
async function resolveAdapter(node: TestNode, ref: string): Promise<void> {
  for await (const _event of node.clients.resolver.resolve({ target: { case: "adapterRef", value: ref } })) {
    // only the outcome matters here
  }
}

describe("parseGithubRef", () => {
  it("reads owner, repo, tag (slashes allowed) and asset, and refuses malformed references", () => {
    expect(parseGithubRef(REF)).toEqual({ owner: "acme", repo: "adapters", tag: "v1", asset: "style.gguf" });
    expect(parseGithubRef("github:o/r@release/v2/a.gguf")).toEqual({ owner: "o", repo: "r", tag: "release/v2", asset: "a.gguf" });
    expect(parseGithubRef("hf:org/repo/x.gguf")).toBeUndefined();
    expect(() => parseGithubRef("github:acme@v1/a.gguf")).toThrow(/github:owner\/repo@tag\/asset/);
    expect(() => parseGithubRef("github:acme/adapters@v1/")).toThrow();
  });
});

describe("github-adapter source against a stand-in GitHub", () => {
  let world: TinyWorld;
  let gh: GithubStandin;
  let node: TestNode;
  let anonymous: TestNode;

  beforeAll(async () => {
    world = await startTinyWorld();
    gh = await startGithubStandin({ validTokens: ["ghp_valid"] });
    await gh.addRelease("acme/adapters", "v1", { "style.gguf": tinyLora });
    await gh.addRelease("acme/secret", "v1", { "style.gguf": tinyLora }, { private: true });
    node = await startTestNode({ ...world.env, LLMLB_GITHUB_URL: gh.url, GITHUB_TOKEN: "ghp_valid" });
    anonymous = await startTestNode({ ...world.env, LLMLB_GITHUB_URL: gh.url });
  });
  afterAll(async () => {
    await node?.stop();
    await anonymous?.stop();
    await gh?.close();
    await world?.close();
  });

  it("fetches a release asset over gRPC Resolve, following GitHub's redirect without leaking the token", async () => {
    const resolver = createClient(ResolverService, createGrpcTransport({ baseUrl: node.grpcUrl }));
    const events = [];
    for await (const res of resolver.resolve({ target: { case: "adapterRef", value: REF } })) events.push(res.event);
    const done = events.find((e) => e.case === "done")!.value as { id: string; path: string; source: string; sha256: string };
    expect(done).toMatchObject({ id: ADAPTER_ID, source: "github-adapter" });
    expect(done.path.startsWith(`${node.home}/adapters/${ADAPTER_ID}/`)).toBe(true);
    expect(Buffer.compare(fs.readFileSync(done.path), Buffer.from(tinyLora))).toBe(0);

    const downloads = gh.requests.filter((r) => r.path.includes("/releases/download/"));
    expect(downloads.length).toBeGreaterThan(0);
    expect(downloads.every((r) => r.host === "github" && r.status === 302)).toBe(true);
    const assetHits = gh.requests.filter((r) => r.host === "assets");
    expect(assetHits.length).toBeGreaterThan(0);
    expect(assetHits.every((r) => r.headers.authorization === undefined)).toBe(true);
    expect(gh.requests.filter((r) => r.host === "github").every((r) => r.headers.authorization === "Bearer ghp_valid")).toBe(true);
  });

  it("lists the adapter, applies it to a chat, and deletes it", async () => {
    const { adapters } = await node.clients.catalog.listAdapters({});
    expect(adapters.map((a) => a.id)).toContain(ADAPTER_ID);
    const chat = async (adapterIds: string[]) => {
      let text = "";
      for await (const res of node.clients.inference.chat({ modelId: TINY_CHAT_ID, messages: [{ role: "user", content: "Hello" }], maxTokens: 16, temperature: 0, adapterIds })) text += res.delta;
      return text;
    };
    const plain = await chat([]);
    const styled = await chat([ADAPTER_ID]);
    expect(styled).not.toBe(plain);
    expect(await chat([ADAPTER_ID])).toBe(styled);

    const { freedBytes } = await node.clients.catalog.deleteAdapter({ adapterId: ADAPTER_ID });
    expect(Number(freedBytes)).toBe(tinyLora.length);
    expect((await node.clients.catalog.listAdapters({})).adapters.map((a) => a.id)).not.toContain(ADAPTER_ID);
    expect(fs.existsSync(`${node.home}/adapters/${ADAPTER_ID}`)).toBe(false);
  });

  it("says which asset is missing for a missing tag or asset", async () => {
    for (const ref of ["github:acme/adapters@v9/style.gguf", "github:acme/adapters@v1/other.gguf"]) {
      const failure = await failureOf(resolveAdapter(node, ref));
      expect(failure.reason).toBe("ADAPTER_NOT_FOUND");
      expect(failure.message).toContain("acme/adapters@");
    }
  });

  it("asks for GITHUB_TOKEN for a private repository", async () => {
    const failure = await failureOf(resolveAdapter(anonymous, "github:acme/secret@v1/style.gguf"));
    expect(failure.reason).toBe("AUTH_REQUIRED");
    expect(failure.message).toContain("GITHUB_TOKEN");
  });
});
