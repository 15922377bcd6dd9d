import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestNode, type TestNode } from "../../../testkit/node/index.js";
import { startTinyWorld, TINY_CHAT_FILE, TINY_REPO, type TinyWorld } from "../../../testkit/world/tiny-world.js";

/**
 * An id has at most one "/", so "/v0/models/<ns>/events" could name model "<ns>"'s events or model
 * "<ns>/events" itself (likewise "<ns>/pull" for DELETE, and "blob/<name>" next to the blob route).
 */
describe("/v0 model routes for ids that end like an action", () => {
  let world: TinyWorld;
  let node: TestNode;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${node.httpUrl}${path}`, {
      method,
      ...(body !== undefined ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    world = await startTinyWorld();
    node = await startTestNode(world.env);
    for (const id of ["ns/events", "ns/pull", "blob/model", "blob/events", "plain"]) {
      expect((await call("POST", "/v0/models/register", { repo: TINY_REPO, filename: TINY_CHAT_FILE, id })).status, id).toBe(201);
    }
  }, 60_000);
  afterAll(async () => {
    await node?.stop();
    await world?.close();
  });

  it("POST /v0/models/register takes the model's capabilities, and names a capability it does not know", async () => {
    const told = await call("POST", "/v0/models/register", { repo: TINY_REPO, filename: TINY_CHAT_FILE, id: "told-embedder", capabilities: ["embeddings"] });
    expect(told).toMatchObject({ status: 201, json: { model: { id: "told-embedder", capabilities: ["embeddings"] } } });
    const unknown = await call("POST", "/v0/models/register", { repo: TINY_REPO, filename: TINY_CHAT_FILE, id: "told-vision", capabilities: ["vision"] });
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(unknown.json)).toMatch(/capabilities/);
  });

  it("GET answers the model whose id is the whole path", async () => {
    for (const id of ["ns/events", "ns/pull", "blob/model", "blob/events"]) {
      const res = await call("GET", `/v0/models/${id}`);
      expect(res.status, id).toBe(200);
      expect(res.json, id).toMatchObject({ id });
    }
  });

  it("an action still applies where no model has the whole path as its id", async () => {
    const events = await fetch(`${node.httpUrl}/v0/models/plain/events`, { signal: AbortSignal.timeout(5_000) });
    expect(events.status).toBe(200);
    expect(events.headers.get("content-type")).toContain("text/event-stream");
    await events.body?.cancel();
    expect((await call("DELETE", "/v0/models/plain/pull")).json).toMatchObject({ model_id: "plain", cancelled: false });
    expect((await call("GET", "/v0/models/nothing/events")).status).toBe(404);
  });

  it("POST …/unload is a 404 for a model outside the catalog, as …/load is, and a 400 for an invalid id; unloaded false for one not loaded", async () => {
    for (const action of ["unload", "load"]) {
      const unknown = await call("POST", `/v0/models/nothing/${action}`, {});
      expect(unknown.status, action).toBe(404);
      expect(unknown.json, action).toMatchObject({ error: { code: "model_not_found", message: expect.stringContaining("model nothing is neither in supported_models.json nor registered") } });
    }
    const invalid = await call("POST", "/v0/models/no%20spaces/unload", {});
    expect(invalid.status).toBe(400);
    expect(invalid.json).toMatchObject({ error: { message: expect.stringMatching(/^model_id: invalid model id "no spaces"/) } });
    expect(await call("POST", "/v0/models/plain/unload", {})).toEqual({ status: 200, json: { model_id: "plain", unloaded: false } });
    expect(await call("POST", "/v0/models/ns/events/unload", {})).toEqual({ status: 200, json: { model_id: "ns/events", unloaded: false } });
  });

  it("DELETE removes the model whose id is the whole path instead of cancelling another's pull", async () => {
    const res = await call("DELETE", "/v0/models/ns/pull?remove_registration=true");
    expect(res.status).toBe(200);
    expect((await call("GET", "/v0/models/ns/pull")).status).toBe(404);
  });
});
