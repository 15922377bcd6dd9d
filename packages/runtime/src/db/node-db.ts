import fs from "node:fs";
import path from "node:path";
import KeyvSqlite from "@keyv/sqlite";
import { Keyv } from "keyv";

/**
 * Opens one keyv namespace in `<home>/node.db`, the node's single SQLite file (store index,
 * registrations, hub-info cache). Components share the file, each in its own namespace.
 */
export function openNodeDb<T>(home: string, namespace: string, options: { table?: string; throwOnErrors?: boolean } = {}): Keyv<T> {
  fs.mkdirSync(home, { recursive: true });
  const store = new KeyvSqlite({ uri: `sqlite://${path.join(home, "node.db")}`, busyTimeout: 10_000, ...(options.table ? { table: options.table } : {}) });
  return new Keyv<T>({ store, namespace, ...(options.throwOnErrors ? { throwOnErrors: true } : {}) });
}
