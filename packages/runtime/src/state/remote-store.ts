import KeyvPostgres from "@keyv/postgres";
import KeyvRedis from "@keyv/redis";
import { Keyv, type KeyvStoreAdapter } from "keyv";
import pg from "pg";
import type { Logger } from "../logging/index.js";
import { tableOnce } from "./postgres-table.js";

/** Table of the shared state in PostgreSQL. */
export const POSTGRES_TABLE = "llmlb_state";

export type RemoteKind = "redis" | "postgres";

export function remoteKindOf(url: string): RemoteKind {
  return url.startsWith("redis") ? "redis" : "postgres";
}

/** The URL without user and password, for logs. */
export function redactUrl(url: string): string {
  const parsed = new URL(url);
  parsed.username = "";
  parsed.password = "";
  return parsed.toString();
}

/**
 * An entry's expiry in the shared store is kept by the store's clock, never by a node's: keyv
 * writes the writer's `Date.now() + ttl` into the value and readers compare it with their own
 * clock, so a node whose clock was 15 s off saw live peers as gone (or went unseen itself). The
 * shared stores drop that field from what they write and expire entries themselves: Redis by
 * its key TTL, PostgreSQL by an `expires_at` its own clock sets and every read filters on.
 */
function withoutWriterClock<T>(serialized: T): T {
  if (typeof serialized !== "string") return serialized;
  try {
    const data = JSON.parse(serialized) as { expires?: unknown };
    if (data === null || typeof data !== "object" || !("expires" in data)) return serialized;
    delete data.expires;
    return JSON.stringify(data) as T;
  } catch {
    return serialized;
  }
}

/** @keyv/redis with expiry by the server's key TTL only (see withoutWriterClock). */
class ServerClockRedis extends KeyvRedis<string> {
  override async set(key: string, value: string, ttl?: number): Promise<void> {
    await super.set(key, withoutWriterClock(value), ttl);
  }

  override async setMany(entries: Array<{ key: string; value: string; ttl?: number }>): Promise<void> {
    for (const { key, value, ttl } of entries) await this.set(key, value, ttl);
  }
}

/** The rows of the shared table that have not expired by PostgreSQL's clock. */
const LIVE = "(expires_at IS NULL OR expires_at > now())";

/** How often a node deletes the shared table's expired rows (on its next write). */
const EXPIRED_ROWS_SWEEP_MS = 60_000;

/**
 * A node's deletion of the shared table's expired rows. Expired rows are never read, but nothing
 * rewrites the key of a node that left for good (a container's address changes at every restart):
 * without it the table kept one row per departure, scanned by every listing. One per node, shared
 * by its namespaces (each has an adapter on the same table): at most one DELETE a minute, and a
 * refusal (a user without DELETE) logged once. A failure waits for the next sweep.
 */
export class ExpiredRowsSweep {
  private last = -Infinity;
  private refusalLogged = false;

  constructor(private readonly logger: Logger) {}

  run(query: (sql: string) => Promise<unknown>, table: string): void {
    const now = performance.now();
    if (now - this.last < EXPIRED_ROWS_SWEEP_MS) return;
    this.last = now;
    query(`DELETE FROM ${table} WHERE expires_at <= now()`).catch((err: unknown) => {
      if ((err as { code?: string }).code !== "42501" || this.refusalLogged) return;
      this.refusalLogged = true;
      this.logger.warn({ err, table }, `this PostgreSQL user may not DELETE from ${table}: rows of nodes that left stay in it; grant it DELETE`);
    });
  }
}

/**
 * @keyv/postgres on a pool of its own: the adapter's built-in pool is one per process and URI
 * (closing one node's store would close every in-process node's), has no connect timeout, and
 * an idle connection dropped by a restarting server would raise an unhandled 'error'. Its
 * iterator also ends silently on a failed query; this one throws, so a partial list is never
 * taken for the whole. Its table is created before the first query, one node at a time
 * (createTableSerialized): the adapter's own creation ignores a lost race and then fails.
 */
class PooledPostgres extends KeyvPostgres {
  declare private pgPool: pg.Pool;
  constructor(
    options: ConstructorParameters<typeof KeyvPostgres>[0],
    private readonly sweep: ExpiredRowsSweep,
  ) {
    super(options);
  }

  override async connect(): Promise<(sql: string, values?: unknown) => Promise<unknown[]>> {
    this.pgPool = new pg.Pool({ connectionString: this.opts.uri, max: 4, connectionTimeoutMillis: 3_000, idleTimeoutMillis: 10_000 });
    this.pgPool.on("error", () => {}); // a dropped idle connection: the next query reconnects
    const { schema, table, keySize } = this.opts;
    // Created, or given the expiry column an earlier version's table lacks, only where missing: a
    // user granted just the table's rows (no CREATE on the schema, not its owner) must still start.
    const tableReady = tableOnce(
      this.pgPool,
      `DO $$ BEGIN
        IF to_regclass('${schema}.${table}') IS NULL THEN
          CREATE TABLE ${schema}.${table}(key VARCHAR(${Number(keySize)}) PRIMARY KEY, value TEXT, expires_at TIMESTAMPTZ);
        ELSIF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = '${schema}' AND table_name = '${table}' AND column_name = 'expires_at') THEN
          ALTER TABLE ${schema}.${table} ADD COLUMN expires_at TIMESTAMPTZ;
        END IF;
      END $$`,
    );
    return async (sql, values) => {
      await tableReady().catch((err: unknown) => {
        throw withTableAdvice(err, `${schema}.${table}`);
      });
      return (await this.pgPool.query(sql, values as unknown[])).rows as unknown[];
    };
  }

  private get tableName(): string {
    return `${this.opts.schema}.${this.opts.table}`;
  }

  override async get<Value>(key: string): Promise<Value | undefined> {
    const rows = (await this.query(`SELECT value FROM ${this.tableName} WHERE key = $1 AND ${LIVE}`, [key])) as Array<{ value: Value }>;
    return rows[0]?.value;
  }

  override async getMany<Value>(keys: string[]): Promise<Array<Value | undefined>> {
    const rows = (await this.query(`SELECT key, value FROM ${this.tableName} WHERE key = ANY($1) AND ${LIVE}`, [keys])) as Array<{ key: string; value: Value }>;
    const byKey = new Map(rows.map((row) => [row.key, row.value]));
    return keys.map((key) => byKey.get(key));
  }

  override async has(key: string): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  override async set(key: string, value: unknown, ttl?: number): Promise<void> {
    await this.query(
      `INSERT INTO ${this.tableName} (key, value, expires_at) VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond')
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
      [key, withoutWriterClock(value), typeof ttl === "number" && ttl > 0 ? ttl : null],
    );
    this.sweep.run((sql) => this.query(sql), this.tableName);
  }

  override async setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<void> {
    for (const { key, value, ttl } of entries) await this.set(key, value, ttl);
  }

  override async *iterator(namespace?: string): AsyncGenerator<string[], void, unknown> {
    const pattern = `${namespace ? `${namespace.replace(/[%_\\]/g, "\\$&")}:` : ""}%`;
    const rows = (await this.query(`SELECT key, value FROM ${this.tableName} WHERE key LIKE $1 AND ${LIVE} ORDER BY key`, [pattern])) as Array<{
      key: string;
      value: string;
    }>;
    for (const row of rows) yield [row.key, row.value];
  }

  override async disconnect(): Promise<void> {
    await this.pgPool.end();
  }
}

/** A table this PostgreSQL user may not create or alter: the error says what its owner must run. */
function withTableAdvice(err: unknown, table: string): unknown {
  if ((err as { code?: string }).code !== "42501") return err;
  return new Error(
    `${(err as Error).message}: this PostgreSQL user cannot create ${table} or add its expires_at column; ` +
      `have the table's owner run ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS expires_at TIMESTAMPTZ (or grant this user ownership)`,
  );
}

/** Every entry of a namespace (local or shared) that has not expired; throws when the store cannot be read. */
export async function allEntries<V>(kv: Keyv<V>): Promise<Array<[string, V]>> {
  // KeyvRedis connects lazily in get/set but not before SCAN.
  if (kv.store instanceof KeyvRedis) await kv.store.getClient();
  const out: Array<[string, V]> = [];
  if (kv.store instanceof ServerClockRedis || kv.store instanceof PooledPostgres) {
    for await (const entry of sharedEntries(kv)) out.push(entry);
    return out;
  }
  if (!kv.iterator) return out;
  for await (const [key, value] of kv.iterator(kv.namespace)) {
    if (value !== undefined) out.push([key as string, value as V]);
  }
  return out;
}

/**
 * A shared namespace's entries. The store leaves out what has expired by its own clock (see
 * withoutWriterClock); an entry written by an earlier version still carries its writer's expiry,
 * which is honoured. Nothing is deleted here: keyv's own iterator deletes what looks expired to
 * the reader, so a node whose clock ran ahead erased every other node's live entries.
 */
async function* sharedEntries<V>(kv: Keyv<V>): AsyncGenerator<[string, V]> {
  const prefix = kv.namespace ? `${kv.namespace}:` : "";
  const iterate = (kv.store as { iterator(namespace?: string): AsyncGenerator<[string, unknown]> }).iterator.bind(kv.store);
  for await (const [key, raw] of iterate(kv.namespace)) {
    const data = (typeof raw === "string" && kv.deserialize ? await kv.deserialize(raw) : raw) as { value?: V; expires?: number } | undefined;
    if (data?.value === undefined || (typeof data.expires === "number" && Date.now() > data.expires)) continue;
    yield [key.startsWith(prefix) ? key.slice(prefix.length) : key, data.value];
  }
}

/** A keyv namespace in the shared store; operations throw when the store cannot be reached. */
export function openRemoteKv<T>(url: string, namespace: string, sweep: ExpiredRowsSweep): Keyv<T> {
  const store: KeyvStoreAdapter =
    remoteKindOf(url) === "redis"
      ? new ServerClockRedis(
          {
            url,
            // Commands wait in the client's queue while it (re)connects; the state link's operation
            // timeout is what decides the store is down.
            socket: { connectTimeout: 3_000, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2_000) },
          },
          { throwOnConnectError: true, throwOnErrors: true },
        )
      : new PooledPostgres({ uri: url, table: POSTGRES_TABLE }, sweep);
  const kv = new Keyv<T>({ store, namespace, throwOnErrors: true });
  kv.on("error", () => {}); // surfaced to the caller as a rejection (throwOnErrors); the link logs it once
  return kv;
}
