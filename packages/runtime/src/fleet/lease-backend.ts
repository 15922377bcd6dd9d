import { createClient } from "@keyv/redis";
import pg from "pg";
import { remoteKindOf } from "../state/remote-store.js";
import { tableOnce } from "../state/postgres-table.js";

/**
 * Atomic download leases in the shared store: one holder per key until its TTL passes. keyv has
 * no "set if absent", so each engine's own primitive is used (Redis SET NX PX; a PostgreSQL
 * upsert that only replaces an expired or own row).
 */
export interface LeaseBackend {
  /** Takes the lease (or renews it when `holder` already has it); false when another holder has it. */
  claim(key: string, holder: string, ttlMs: number): Promise<boolean>;
  /** The live holder, if any. */
  holder(key: string): Promise<string | undefined>;
  release(key: string, holder: string): Promise<void>;
  close(): Promise<void>;
}

const PREFIX = "llmlb:lease:";

function redisLeases(url: string): LeaseBackend {
  const client = createClient({
    url,
    socket: { connectTimeout: 3_000, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2_000) },
  });
  client.on("error", () => {}); // operations reject while disconnected; the state link reports it
  let connecting: Promise<unknown> | undefined;
  const ready = async () => {
    if (!client.isOpen) connecting ??= client.connect().finally(() => (connecting = undefined));
    await connecting;
  };
  return {
    async claim(key, holder, ttlMs) {
      await ready();
      if ((await client.set(PREFIX + key, holder, { NX: true, PX: ttlMs })) === "OK") return true;
      if ((await client.get(PREFIX + key)) !== holder) return false;
      return (await client.set(PREFIX + key, holder, { XX: true, PX: ttlMs })) === "OK";
    },
    async holder(key) {
      await ready();
      return (await client.get(PREFIX + key)) ?? undefined;
    },
    async release(key, holder) {
      await ready();
      if ((await client.get(PREFIX + key)) === holder) await client.del(PREFIX + key);
    },
    async close() {
      if (client.isReady) await client.quit().catch(() => client.destroy());
      else if (client.isOpen) client.destroy();
    },
  };
}

function postgresLeases(url: string): LeaseBackend {
  const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 3_000, idleTimeoutMillis: 10_000 });
  pool.on("error", () => {});
  // Created only where missing: a user granted just the table's rows (no CREATE on the schema) must still start.
  const ready = tableOnce(
    pool,
    "DO $$ BEGIN IF to_regclass('llmlb_leases') IS NULL THEN CREATE TABLE llmlb_leases (key TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL); END IF; END $$",
  );
  return {
    async claim(key, holder, ttlMs) {
      await ready();
      const res = await pool.query(
        `INSERT INTO llmlb_leases (key, holder, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond')
         ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
         WHERE llmlb_leases.expires_at < now() OR llmlb_leases.holder = excluded.holder
         RETURNING holder`,
        [key, holder, ttlMs],
      );
      return res.rowCount === 1;
    },
    async holder(key) {
      await ready();
      const res = await pool.query<{ holder: string }>("SELECT holder FROM llmlb_leases WHERE key = $1 AND expires_at > now()", [key]);
      return res.rows[0]?.holder;
    },
    async release(key, holder) {
      await ready();
      await pool.query("DELETE FROM llmlb_leases WHERE key = $1 AND holder = $2", [key, holder]);
    },
    async close() {
      await pool.end();
    },
  };
}

export function openLeaseBackend(url: string): LeaseBackend {
  return remoteKindOf(url) === "redis" ? redisLeases(url) : postgresLeases(url);
}
