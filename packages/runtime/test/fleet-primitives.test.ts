import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, postgresMissing, redisMissing, startPostgres, startRedis } from "../../../testkit/services/index.js";
import { openLeaseBackend } from "../src/fleet/lease-backend.js";
import { NodeDirectory, type NodeRecord } from "../src/fleet/node-directory.js";
import { silentLogger } from "../src/logging/index.js";
import { captureLogger } from "./resolver-world.js";
import { openStateStore, type StateStore } from "../src/state/state-store.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The same checks against each engine that can hold a fleet's state. */
const engines = [
  { name: "Redis", missing: redisMissing(), start: async () => { const s = await startRedis(); return { url: s.url, close: () => s.close() }; } },
  { name: "PostgreSQL", missing: postgresMissing(), start: async () => { const s = await startPostgres(); return { url: s.url, close: () => s.close() }; } },
];

for (const engine of engines) {
  if (engine.missing) console.warn(`skipping the ${engine.name} lease and directory tests: ${engine.missing}`);

  describe.skipIf(engine.missing !== undefined)(`download leases and the node directory in ${engine.name}`, () => {
    let server: { url: string; close(): Promise<void> };
    let home: string;
    let state: StateStore;

    beforeAll(async () => {
      server = await engine.start();
      home = fs.mkdtempSync(path.join(os.tmpdir(), "llmlb-fleet-"));
      state = await openStateStore({ home, stateUrl: server.url }, silentLogger());
    });
    afterAll(async () => {
      await state?.close();
      await server?.close();
      fs.rmSync(home, { recursive: true, force: true });
    });

    it("gives a lease to one of many claimants at once, renews it for its holder only, and frees it on release or expiry", async () => {
      const leases = openLeaseBackend(server.url);
      try {
        const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => leases.claim("model-a", `http://node-${i}`, 2_000)));
        expect(claims.filter(Boolean)).toHaveLength(1);
        const holder = `http://node-${claims.indexOf(true)}`;
        expect(await leases.holder("model-a")).toBe(holder);
        expect(await leases.claim("model-a", holder, 2_000)).toBe(true); // renewal
        expect(await leases.claim("model-a", "http://other", 2_000)).toBe(false);

        await leases.release("model-a", "http://other"); // not the holder: no effect
        expect(await leases.holder("model-a")).toBe(holder);
        await leases.release("model-a", holder);
        expect(await leases.holder("model-a")).toBeUndefined();

        expect(await leases.claim("model-b", "http://dies", 300)).toBe(true);
        await sleep(500); // its holder stopped renewing: the lease expired
        expect(await leases.holder("model-b")).toBeUndefined();
        expect(await leases.claim("model-b", "http://takes-over", 2_000)).toBe(true);
      } finally {
        await leases.close();
      }
    });

    it("lists the live nodes with their READY models; a node that stops beating disappears when its TTL passes", async () => {
      const kv = state.remoteNamespace<NodeRecord>("nodes")!;
      const directory = (self: string, ready: string[], ttlMs: number) =>
        new NodeDirectory({ kv, self, readyModels: async () => ready, ttlMs, heartbeatMs: 60_000, logger: silentLogger() });
      const alive = directory("http://alive", ["model-a"], 60_000);
      const dying = directory("http://dying", ["model-a", "model-b"], 700);
      const observer = directory("http://observer", [], 60_000);
      await Promise.all([alive.publish(), dying.publish()]);

      expect((await observer.holders("model-a")).sort()).toEqual(["http://alive", "http://dying"]);
      expect(await observer.holders("model-b")).toEqual(["http://dying"]);
      await sleep(1_000); // "dying" never beats again
      expect(await observer.holders("model-a")).toEqual(["http://alive"]);
      expect(await observer.holders("model-b")).toEqual([]);

      await alive.close(); // a node that shuts down leaves at once
      expect(await observer.holders("model-a")).toEqual([]);
      await observer.close();
    });

    it("a node whose clock is off by more than the TTL still sees its peers, and is seen", async () => {
      const kv = state.remoteNamespace<NodeRecord>("nodes")!;
      const directory = (self: string, ready: string[]) => new NodeDirectory({ kv, self, readyModels: async () => ready, ttlMs: 15_000, heartbeatMs: 60_000, logger: silentLogger() });
      const other = directory("http://other", ["model-c"]);
      const fast = directory("http://fast", []);
      const slow = directory("http://slow", ["model-d"]);
      const realNow = Date.now;
      const withClock = async <T>(offsetMs: number, run: () => Promise<T>) => {
        Date.now = () => realNow() + offsetMs;
        try {
          return await run();
        } finally {
          Date.now = realNow;
        }
      };
      try {
        await other.publish();
        // Its record, written by a clock 30 s behind, has expired by its own clock when it is written.
        await withClock(-30_000, () => slow.publish());
        // Before, a reader 30 s ahead saw no peer at all, and nobody saw "slow".
        expect(await withClock(30_000, () => fast.holders("model-c"))).toEqual(["http://other"]);
        expect(await withClock(30_000, () => fast.holders("model-d"))).toEqual(["http://slow"]);
        expect(await other.holders("model-d")).toEqual(["http://slow"]);
        // Reading through keyv's get (which deletes what looks expired to the reader) keeps it too.
        expect(await withClock(30_000, () => kv.get("http://other"))).toMatchObject({ url: "http://other" });
        expect(await other.holders("model-c")).toEqual([]); // "other" is itself, not a peer
        expect(await fast.holders("model-c")).toEqual(["http://other"]);
      } finally {
        await Promise.all([other.close(), fast.close(), slow.close()]);
      }
    });
  });
}

describe.skipIf(postgresMissing() !== undefined)("a PostgreSQL user granted only the rows of the shared table", () => {
  it("works on the tables their owner made (an earlier version's llmlb_state once its owner adds expires_at, as the log says)", async () => {
    const server = await startPostgres();
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "llmlb-fleet-role-"));
    const pg = await import("pg");
    const owner = new pg.default.Client({ connectionString: server.url });
    await owner.connect();
    const appUrl = server.url.replace("llmlb@", "app@");
    try {
      // The table an earlier version made, and a role that may use its rows but does not own it.
      await owner.query("CREATE TABLE llmlb_state(key VARCHAR(255) PRIMARY KEY, value TEXT)");
      await owner.query("CREATE TABLE llmlb_leases (key TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL)");
      await owner.query("CREATE ROLE app LOGIN");
      await owner.query("GRANT SELECT, INSERT, UPDATE, DELETE ON llmlb_state, llmlb_leases TO app");
      /** Opens the store as "app", writes one entry; what the link says, and what it logged. */
      const open = async () => {
        const { logger, lines } = captureLogger();
        const state = await openStateStore({ home, stateUrl: appUrl }, logger, { connectTimeoutMs: 2_000, probeIntervalMs: 60_000 });
        await state.remoteNamespace<NodeRecord>("nodes")!.set("http://x", { url: "http://x", ready: [], heartbeatAt: 0 }, 60_000);
        const reachable = state.link!.reachable;
        await state.close();
        return { reachable, logged: lines.map((l) => String(l.err ?? "")).join("\n") };
      };
      // Without the column, the owner must add it: the log says how.
      const before = await open();
      expect(before.reachable).toBe(false);
      expect(before.logged).toContain("have the table's owner run ALTER TABLE public.llmlb_state ADD COLUMN IF NOT EXISTS expires_at TIMESTAMPTZ");
      await owner.query("ALTER TABLE llmlb_state ADD COLUMN IF NOT EXISTS expires_at TIMESTAMPTZ");
      // Before, every start ran CREATE TABLE and ALTER TABLE, which need CREATE on the schema and ownership.
      expect(await open()).toEqual({ reachable: true, logged: "" });
      expect((await owner.query("SELECT key FROM llmlb_state WHERE expires_at > now()")).rows).toEqual([{ key: "nodes:http://x" }]);
      const leases = openLeaseBackend(appUrl);
      try {
        expect(await leases.claim("model-a", "http://x", 2_000)).toBe(true);
      } finally {
        await leases.close();
      }
    } finally {
      await owner.end();
      await server.close();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

describe.skipIf(postgresMissing() !== undefined)("expired rows in PostgreSQL (Redis expires its keys itself)", () => {
  it("are deleted by the next node to write: a node that left for good leaves no row behind", async () => {
    const server = await startPostgres();
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "llmlb-fleet-sweep-"));
    const pg = await import("pg");
    const owner = new pg.default.Client({ connectionString: server.url });
    await owner.connect();
    const rows = async () => (await owner.query("SELECT key FROM llmlb_state WHERE key = 'nodes:http://left'")).rows.length;
    const state = await openStateStore({ home, stateUrl: server.url }, silentLogger());
    try {
      await state.remoteNamespace<NodeRecord>("nodes")!.set("http://left", { url: "http://left", ready: [], heartbeatAt: 0 }, 200);
      await sleep(400);
      expect(await rows()).toBe(1); // expired, so never read, but still there
      // The next node to write deletes it (each node at most once a minute).
      const other = await openStateStore({ home, stateUrl: server.url }, silentLogger());
      try {
        await other.remoteNamespace<NodeRecord>("nodes")!.set("http://new", { url: "http://new", ready: [], heartbeatAt: 0 }, 60_000);
        const deadline = Date.now() + 5_000;
        while ((await rows()) > 0 && Date.now() < deadline) await sleep(50);
        expect(await rows()).toBe(0);
      } finally {
        await other.close();
      }
      // A user that may not delete them is told once.
      await owner.query("CREATE ROLE keeper LOGIN");
      await owner.query("GRANT SELECT, INSERT, UPDATE ON llmlb_state TO keeper");
      const { logger, lines } = captureLogger();
      const keeper = await openStateStore({ home, stateUrl: server.url.replace("llmlb@", "keeper@") }, logger);
      try {
        // Each namespace sweeps on its first write: the node is told once.
        for (const ns of ["nodes", "suspect-peers", "hub"]) await keeper.remoteNamespace<NodeRecord>(ns)!.set("http://keeper", { url: "http://keeper", ready: [], heartbeatAt: 0 }, 60_000);
        const refusals = () => lines.filter((l) => String(l.msg).includes("may not DELETE from public.llmlb_state")).length;
        const deadline = Date.now() + 5_000;
        while (refusals() === 0 && Date.now() < deadline) await sleep(50);
        await sleep(300);
        expect(refusals()).toBe(1);
      } finally {
        await keeper.close();
      }
    } finally {
      await state.close();
      await owner.end();
      await server.close();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

describe.skipIf(postgresMissing() !== undefined)("a node whose PostgreSQL is not up yet", () => {
  it("creates the shared table once the server is up, and its state link comes up with it", async () => {
    const port = await freePort();
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "llmlb-fleet-late-"));
    // Nothing listens yet: the store opens on local state only.
    const state = await openStateStore({ home, stateUrl: `postgres://llmlb@127.0.0.1:${port}/postgres` }, silentLogger(), { connectTimeoutMs: 200, probeIntervalMs: 100 });
    const kv = state.remoteNamespace<NodeRecord>("nodes")!;
    await kv.get("warm-up"); // the namespace has met the refused connection too
    const server = await startPostgres({ port });
    const self = new NodeDirectory({ kv, self: "http://late", readyModels: async () => ["model-a"], ttlMs: 60_000, heartbeatMs: 60_000, logger: silentLogger() });
    const observer = new NodeDirectory({ kv, self: "http://observer", readyModels: async () => [], ttlMs: 60_000, heartbeatMs: 60_000, logger: silentLogger() });
    try {
      expect(state.link!.reachable).toBe(false);
      const deadline = Date.now() + 20_000;
      while (!state.link!.reachable && Date.now() < deadline) await sleep(50);
      expect(state.link!.reachable).toBe(true);
      await self.publish();
      expect(await observer.holders("model-a")).toEqual(["http://late"]);
    } finally {
      await self.close();
      await observer.close();
      await state.close();
      await server.close();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
