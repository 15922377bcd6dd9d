import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestNode, type TestNode } from "../../../testkit/node/index.js";
import { startRouterStandin, type RouterStandin } from "../../../testkit/standins/index.js";
import { describeBytes } from "../../../testkit/gguf/tiny-gguf.js";
import { startTinyWorld, tinyChat, tinyEmbed, TINY_CHAT_FILE, TINY_CHAT_ID, TINY_EMBED_ID, TINY_REPO, type TinyWorld } from "../../../testkit/world/tiny-world.js";

const ROUTER_KEY = "rk_source_key_9";

/** A node whose own Hugging Face source is unreachable: what it gets comes through the router (or the URLs the router's manifests give). */
const routerSourcedNode = (world: TinyWorld, router: RouterStandin) =>
  startTestNode({ ...world.env, HF_ENDPOINT: "http://127.0.0.1:9", LLMLB_ROUTER_URL: router.url, LLMLB_ROUTER_API_KEY: ROUTER_KEY, LLMLB_ROUTER_MODE: "poll" });

/** Every event of one resolution of `id` on `node`. */
async function resolveEvents(node: TestNode, id: string) {
  const events = [];
  for await (const res of node.clients.resolver.resolve({ target: { case: "modelId", value: id } })) events.push(res.event);
  return events;
}

describe("an llmlb router as the model source (manifest, whole-file blob route)", () => {
  let world: TinyWorld;
  let router: RouterStandin;
  let node: TestNode;
  beforeAll(async () => {
    world = await startTinyWorld();
    router = await startRouterStandin({ apiKey: ROUTER_KEY, realRouter: true });
    await router.addModel(TINY_CHAT_ID, tinyChat);
    await router.addModel(TINY_EMBED_ID, tinyEmbed);
    // The manifests' URLs point at the stand-in hub.
    node = await routerSourcedNode(world, router);
  });
  afterAll(async () => {
    await node?.stop();
    await router?.close();
    await world?.close();
  });

  const resolve = (id: string) => resolveEvents(node, id);

  it("fetches the manifest's llama_cpp file from its URL when reachable, skipping other runtimes", async () => {
    router.setManifest(TINY_CHAT_ID, {
      format: "gguf",
      quantization: "F32",
      files: [
        { name: "model.safetensors", runtimes: ["gptoss_cpp"], url: `${world.hf.url}/${TINY_REPO}/resolve/main/model.safetensors` },
        { name: TINY_CHAT_FILE, runtimes: ["llama_cpp"], url: `${world.hf.url}/${TINY_REPO}/resolve/main/${TINY_CHAT_FILE}` },
      ],
    });
    const events = await resolve(TINY_CHAT_ID);
    expect(events.find((e) => e.case === "done")?.value).toMatchObject({ source: "router-proxy" });
    const hubFiles = world.hf.requests.filter((r) => r.path.includes("/resolve/")).map((r) => r.path);
    expect(hubFiles.some((p) => p.endsWith(TINY_CHAT_FILE))).toBe(true);
    expect(hubFiles.some((p) => p.endsWith("model.safetensors"))).toBe(false);
    expect(router.bytesServed(TINY_CHAT_ID)).toBe(0);
    // The router's key never travels to the manifest's host.
    expect(world.hf.requests.every((r) => !JSON.stringify(r.headers).includes(ROUTER_KEY))).toBe(true);
    const chat = await fetch(`${node.httpUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: TINY_CHAT_ID, messages: [{ role: "user", content: "hi" }], max_tokens: 3 }),
    });
    expect(chat.status).toBe(200);
  });

  it("falls back to the blob route (200, no Range) when the manifest's URL is unreachable; a dropped transfer restarts from zero and says so", async () => {
    router.setManifest(TINY_EMBED_ID, { format: "gguf", files: [{ name: "tiny-embed.gguf", runtimes: ["llama_cpp"], url: "http://127.0.0.1:9/unreachable/tiny-embed.gguf" }] });
    const size = describeBytes(tinyEmbed).size;
    router.dropAt(Math.floor(size / 2), { path: TINY_EMBED_ID });
    const events = await resolve(TINY_EMBED_ID);
    expect(events.find((e) => e.case === "done")?.value).toMatchObject({ source: "router-proxy" });
    const progress = events.filter((e) => e.case === "progress").map((e) => e.value);
    const restarted = progress.find((p) => p.restarts > 0);
    expect(restarted?.restarts).toBe(1);
    expect(restarted?.restartReason).toMatch(/cannot resume|ignores byte ranges/);
    // Every blob request was a whole-file GET: half the file, then all of it again.
    const gets = router.requests.filter((r) => r.method === "GET" && r.file === TINY_EMBED_ID);
    expect(gets.length).toBeGreaterThanOrEqual(2);
    expect(router.bytesServed(TINY_EMBED_ID)).toBe(Math.floor(size / 2) + size);
    const model = (await (await fetch(`${node.httpUrl}/v0/models/${TINY_EMBED_ID}`)).json()) as { state: string; local: { source: string } };
    expect(model).toMatchObject({ state: "ready", local: { source: "router-proxy" } });
  });
});

describe("an llmlb router that names its models by repository, as the real one does", () => {
  let world: TinyWorld;
  let router: RouterStandin;
  let node: TestNode;
  beforeAll(async () => {
    world = await startTinyWorld();
    router = await startRouterStandin({ apiKey: ROUTER_KEY, realRouter: true });
    node = await routerSourcedNode(world, router);
  });
  afterAll(async () => {
    await node?.stop();
    await router?.close();
    await world?.close();
  });

  const outcome = (id: string) => resolveEvents(node, id);

  it("fetches a catalog model the router lists under its repo's name, and not another file of that repo", async () => {
    // The router holds the repo's chat file under the name llmlb-test/tiny-gguf.
    const { id: routerName } = await router.addModel("ignored", tinyChat, { repo: TINY_REPO, filename: TINY_CHAT_FILE });
    expect(routerName).toBe(TINY_REPO.toLowerCase());
    const chat = await outcome(TINY_CHAT_ID);
    expect(chat.find((e) => e.case === "done")?.value).toMatchObject({ source: "router-proxy" });
    expect(router.bytesServed(routerName)).toBe(describeBytes(tinyChat).size);

    // The embedding model is another file of the same repo: the router's copy is not it.
    const embed = (await outcome(TINY_EMBED_ID).catch((err: Error) => [{ case: "error", value: err.message }])) as Array<{ case: string; value: unknown }>;
    expect(embed.find((e) => e.case === "done")).toBeUndefined();
    const failed = embed.find((e) => e.case === "sourceFailed" || e.case === "error");
    expect(JSON.stringify(failed ?? embed)).toMatch(/another file/);
    expect(router.bytesServed(routerName)).toBe(describeBytes(tinyChat).size);
  });
});
