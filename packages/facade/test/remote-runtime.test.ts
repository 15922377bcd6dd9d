import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, silentLogger } from "@llmlb/runtime";
import { startFacade, type RunningFacade } from "../src/index.js";
import { isolatedEnv, startTestNode, tempDir, type TestNode } from "../../../testkit/node/index.js";
import { startTinyWorld, TINY_CHAT_ID, type TinyWorld } from "../../../testkit/world/tiny-world.js";

describe("the HTTP facade in front of a remote runtime (LLMLB_RUNTIME_URL)", () => {
  let world: TinyWorld;
  let runtime: TestNode;
  let facade: RunningFacade;
  let cleanup: () => void;

  beforeAll(async () => {
    world = await startTinyWorld();
    runtime = await startTestNode({ ...world.env, LLMLB_API_KEY: "shared-key" });
    const home = tempDir();
    cleanup = home.cleanup;
    facade = await startFacade(loadConfig({ env: isolatedEnv(home.dir, { LLMLB_RUNTIME_URL: runtime.grpcUrl, LLMLB_API_KEY: "shared-key" }) }), silentLogger());
  });
  afterAll(async () => {
    await facade?.close();
    await runtime?.stop();
    await world?.close();
    cleanup?.();
  });

  const auth = { authorization: "Bearer shared-key" };

  it("lists the runtime's models and answers chats through it over gRPC", async () => {
    const list = (await (await fetch(`${facade.http.url}/v0/models`, { headers: auth })).json()) as { models: Array<{ id: string }> };
    expect(list.models.map((m) => m.id)).toEqual(expect.arrayContaining([TINY_CHAT_ID]));
    const res = await fetch(`${facade.http.url}/v1/chat/completions`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ model: TINY_CHAT_ID, messages: [{ role: "user", content: "hi" }], max_tokens: 3, temperature: 0 }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(3);
    // The model now lives on the runtime's disk, not the facade's.
    expect((await runtime.clients.catalog.getModel({ modelId: TINY_CHAT_ID })).model?.local?.path.startsWith(runtime.home)).toBe(true);
  });

  it("maps the runtime's errors to the same HTTP answers", async () => {
    const res = await fetch(`${facade.http.url}/v1/chat/completions`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ model: "nope", messages: [{ role: "user", content: "hi" }] }),
    });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("model_not_found");
  });

  it("has no local model files to serve", async () => {
    expect((await fetch(`${facade.http.url}/v0/models/blob/${TINY_CHAT_ID}`, { headers: auth })).status).toBe(501);
  });
});
