import { isDeepStrictEqual } from "node:util";
import type { Keyv } from "keyv";
import { openNodeDb } from "../db/node-db.js";
import type { Logger } from "../logging/index.js";

/**
 * The store's index in `<home>/node.db` (keyv + SQLite): a cache of every metadata.json and of
 * sha256 values computed for read-only files. It is rebuilt from disk whenever the store is
 * listed, so losing or deleting it never loses a model. Failures are logged, never thrown.
 */
export class StoreIndex {
  private readonly keyv: Keyv;
  /** Background writes, in order; close() waits for them. */
  private pending: Promise<void> = Promise.resolve();
  private readonly queued = new Map<string, ReadonlyMap<string, unknown>>();

  constructor(home: string, private readonly logger: Logger) {
    this.keyv = openNodeDb(home, "store", { table: "store" });
    this.keyv.on("error", (err: unknown) => this.logger.warn({ err }, "store index error"));
  }

  async get<T>(key: string): Promise<T | undefined> {
    try {
      return (await this.keyv.get<T>(key)) ?? undefined;
    } catch (err) {
      this.logger.warn({ err, key }, "store index read failed");
      return undefined;
    }
  }

  /** Writes only when the value changed (list operations call this for every entry). */
  async put(key: string, value: unknown): Promise<void> {
    try {
      if (isDeepStrictEqual(await this.keyv.get(key), value)) return;
      await this.keyv.set(key, value);
    } catch (err) {
      this.logger.warn({ err, key }, "store index write failed");
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.keyv.delete(key);
    } catch (err) {
      this.logger.warn({ err, key }, "store index delete failed");
    }
  }

  async keys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    try {
      if (!this.keyv.iterator) return out;
      for await (const [key] of this.keyv.iterator(undefined)) {
        if (typeof key === "string" && key.startsWith(prefix)) out.push(key);
      }
    } catch (err) {
      this.logger.warn({ err }, "store index scan failed");
    }
    return out;
  }

  /**
   * Makes the entries under `prefix` equal to `entries`, in the background: reads of the store
   * never wait for SQLite. Calls made while a sync waits replace its entries (only the latest
   * listing matters), so frequent listings cannot pile up work.
   */
  syncInBackground(prefix: string, entries: ReadonlyMap<string, unknown>): void {
    const queued = this.queued.has(prefix);
    this.queued.set(prefix, entries);
    if (queued) return;
    this.pending = this.pending.then(async () => {
      const latest = this.queued.get(prefix)!;
      this.queued.delete(prefix);
      for (const [key, value] of latest) await this.put(key, value);
      for (const key of await this.keys(prefix)) if (!latest.has(key)) await this.delete(key);
    });
  }

  async close(): Promise<void> {
    await this.pending;
    try {
      await this.keyv.disconnect();
    } catch {
      // already closed
    }
  }
}
