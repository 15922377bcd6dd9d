import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { logSink, startTestNode, type TestNode } from "../../../testkit/node/index.js";
import { postgresMissing, redisMissing, startPostgres, startRedis, type PostgresServer, type RedisServer } from "../../../testkit/services/index.js";
import { startTinyWorld, TINY_CHAT_FILE, TINY_REPO, type TinyWorld } from "../../../testkit/world/tiny-world.js";

/** Polls until check() passes (shared state arrives within a sync period, ~2 s), failing after timeoutMs. */
async function eventually(check: () => Promise<void>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function register(node: TestNode, id: string): Promise<void> {
  const res = await fetch(`${node.httpUrl}/v0/models/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ repo: TINY_REPO, filename: TINY_CHAT_FILE, id }),
  });
  expect(res.status, await res.clone().text()).toBeLessThan(300);
}

async function modelStatus(node: TestNode, id: string): Promise<number> {
  const res = await fetch(`${node.httpUrl}/v0/models/${id}`);
  await res.arrayBuffer();
  return res.status;
}

function startFleet(world: TinyWorld, stateUrl: string, count: number): Promise<TestNode[]> {
  return Promise.all(Array.from({ length: count }, () => startTestNode({ ...world.env, LLMLB_STATE_URL: stateUrl })));
}

const noRedis = redisMissing();
if (noRedis) console.warn(`skipping the Redis fleet-state tests: ${noRedis}`);

describe.skipIf(noRedis !== undefined)("fleet state shared through Redis", () => {
  let world: TinyWorld;
  let redis: RedisServer;
  let nodes: TestNode[] = [];

  beforeAll(async () => {
    world = await startTinyWorld();
    redis = await startRedis();
    nodes = await startFleet(world, redis.url, 8);
  });
  afterAll(async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await redis?.close();
    await world?.close();
  });

  it("a registration made on node 1 is visible on node 8, and so is its removal", async () => {
    const [first, last] = [nodes[0]!, nodes[7]!];
    expect(await modelStatus(last, "fleet-chat")).toBe(404);
    await register(first, "fleet-chat");
    await eventually(async () => expect(await modelStatus(last, "fleet-chat")).toBe(200));
    // The same id cannot be registered twice across the fleet once it has propagated (the same registration again is answered as the first).
    const again = (body: object) => fetch(`${last.httpUrl}/v0/models/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await again({ repo: TINY_REPO, filename: TINY_CHAT_FILE, id: "fleet-chat", display_name: "Another" })).status).toBe(409);

    const removed = await fetch(`${first.httpUrl}/v0/models/fleet-chat?remove_registration=true`, { method: "DELETE" });
    expect(removed.status).toBeLessThan(300);
    await eventually(async () => expect(await modelStatus(last, "fleet-chat")).toBe(404));
  });

  it("keeps another fleet on the same Redis server apart when it uses another database number", async () => {
    const other = await startTestNode({ ...world.env, LLMLB_STATE_URL: `${redis.url}/1` });
    try {
      await register(nodes[0]!, "fleet-a-only");
      await register(other, "fleet-b-only");
      await eventually(async () => expect(await modelStatus(nodes[5]!, "fleet-a-only")).toBe(200));
      // Another node of fleet B (db 1) sees B's model, so a sync period has passed: A's has not come over.
      const otherPeer = await startTestNode({ ...world.env, LLMLB_STATE_URL: `${redis.url}/1` });
      try {
        await eventually(async () => expect(await modelStatus(otherPeer, "fleet-b-only")).toBe(200));
        expect(await modelStatus(otherPeer, "fleet-a-only")).toBe(404);
      } finally {
        await otherPeer.stop();
      }
      expect(await modelStatus(other, "fleet-a-only")).toBe(404);
      expect(await modelStatus(nodes[5]!, "fleet-b-only")).toBe(404);
    } finally {
      await other.stop();
    }
  });

  it("keeps working on local state while Redis is down and catches up when it returns", async () => {
    const [a, b, c] = [nodes[0]!, nodes[1]!, nodes[2]!];
    await register(c, "before-outage");
    await eventually(async () => expect(await modelStatus(b, "before-outage")).toBe(200));

    await redis.stop(); // SIGKILL, no persistence: it comes back empty
    await register(a, "during-outage"); // answered from node.db
    expect(await modelStatus(a, "during-outage")).toBe(200);
    expect(await modelStatus(b, "before-outage")).toBe(200); // what a node knew stays served
    expect(await modelStatus(b, "during-outage")).toBe(404);

    await redis.start();
    // Node a republishes what it wrote meanwhile; every node republishes its copy into the emptied store.
    await eventually(async () => expect(await modelStatus(b, "during-outage")).toBe(200));
    const late = await startTestNode({ ...world.env, LLMLB_STATE_URL: redis.url });
    nodes.push(late);
    // A node joining now finds both, once every node's recovery probe has republished (within seconds).
    await eventually(async () => expect(await modelStatus(late, "before-outage")).toBe(200));
    await eventually(async () => expect(await modelStatus(late, "during-outage")).toBe(200));
  });

  it("says it joined the fleet only once the store has its record, not while the store cannot be reached", async () => {
    await redis.stop();
    const logs = logSink();
    // The node opens its listeners after waiting 15 s for the store, then serves on its local state.
    nodes.push(await startTestNode({ ...world.env, LLMLB_STATE_URL: redis.url, LLMLB_LOG_LEVEL: "info", LLMLB_LOG_FORMAT: "json" }, {}, { logTo: logs.stream }));
    expect(logs.lines.some((l) => typeof l.msg === "string" && l.msg.startsWith("shared state store unreachable"))).toBe(true);
    expect(logs.lines.some((l) => l.msg === "joined the fleet")).toBe(false);
    await redis.start();
    await expect.poll(() => logs.lines.some((l) => l.msg === "joined the fleet"), { timeout: 15_000 }).toBe(true);
  });
});

const noPostgres = postgresMissing();
if (noPostgres) console.warn(`skipping the PostgreSQL fleet-state test: ${noPostgres}`);

describe.skipIf(noPostgres !== undefined)("fleet state shared through PostgreSQL", () => {
  let world: TinyWorld;
  let pg: PostgresServer;
  let nodes: TestNode[] = [];

  beforeAll(async () => {
    world = await startTinyWorld();
    pg = await startPostgres();
    nodes = await startFleet(world, pg.url, 3);
  });
  afterAll(async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await pg?.close();
    await world?.close();
  });

  it("a registration made on one node is visible on the others, and so is its removal", async () => {
    await register(nodes[0]!, "pg-chat");
    for (const node of nodes.slice(1)) await eventually(async () => expect(await modelStatus(node, "pg-chat")).toBe(200));
    const removed = await fetch(`${nodes[1]!.httpUrl}/v0/models/pg-chat?remove_registration=true`, { method: "DELETE" });
    expect(removed.status).toBeLessThan(300);
    await eventually(async () => expect(await modelStatus(nodes[2]!, "pg-chat")).toBe(404));
  });
});
