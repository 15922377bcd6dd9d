import type pg from "pg";

/** Any fixed key: every llmlb node takes the same lock while it creates its tables. */
const DDL_LOCK_KEY = 0x6c6c6d6c62; // "llmlb"

/**
 * Runs a `CREATE TABLE IF NOT EXISTS` so that nodes starting together on a new database cannot
 * race: PostgreSQL lets two concurrent creations of one table collide (23505 on pg_type), and
 * the loser, which must not treat that as done, would query a table not yet committed (42P01).
 * The creations take a transaction-scoped advisory lock, so they run one after the other.
 */
export async function createTableSerialized(pool: pg.Pool, ddl: string): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock($1)", [DDL_LOCK_KEY]);
    await client.query(ddl);
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** `createTableSerialized` once per pool; a failure is retried by the next caller. */
export function tableOnce(pool: pg.Pool, ddl: string): () => Promise<void> {
  let created: Promise<void> | undefined;
  return () =>
    (created ??= createTableSerialized(pool, ddl).catch((err: unknown) => {
      created = undefined;
      throw err;
    }));
}
