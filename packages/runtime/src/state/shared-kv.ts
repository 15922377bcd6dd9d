import type { Keyv } from "keyv";
import { allEntries } from "./remote-store.js";
import type { StateLink } from "./state-link.js";

/** One namespace of state, as the components use it (registrations, hub info, directory, leases). */
export interface KvNamespace<T> {
  get(key: string): Promise<T | undefined>;
  getMany(keys: string[]): Promise<Array<T | undefined>>;
  /** ttlMs: the entry disappears after this long (node directory, leases, caches). */
  set(key: string, value: T, ttlMs?: number): Promise<void>;
  delete(key: string): Promise<boolean>;
  /**
   * Every entry. `complete` is false when the shared store could not be asked and the answer
   * is this node's local copy only (entries other nodes wrote may be missing).
   */
  entries(): Promise<{ entries: Array<[string, T]>; complete: boolean }>;
}

type PendingOp = "set" | "delete";

export interface SharedKvParts<T> {
  /** The node's own copy (<home>/node.db): always written, read when the shared store is down. */
  local: Keyv<T>;
  /** Keys written while the shared store was down, republished when it is back (persisted, so a restart keeps them). */
  pending?: Keyv<PendingOp>;
  /** The shared store; absent on a single node. */
  remote?: Keyv<T>;
  link?: StateLink;
  /** Copy what other nodes wrote into the local copy when listing (so a node that restarts while the store is down still knows it). */
  mirror?: boolean;
}

/** A namespace written to both the local copy and the shared store, read from the shared store while it answers. */
export class SharedKv<T> implements KvNamespace<T> {
  constructor(private readonly parts: SharedKvParts<T>) {
    parts.link?.onRecovered((storeWasReset) => this.republish(storeWasReset));
  }

  async get(key: string): Promise<T | undefined> {
    const { remote, link, local } = this.parts;
    if (remote && link) {
      const answer = await link.run(() => remote.get<T>(key));
      if (answer.ok) return answer.value ?? undefined;
    }
    return (await local.get<T>(key)) ?? undefined;
  }

  async getMany(keys: string[]): Promise<Array<T | undefined>> {
    const { remote, link, local } = this.parts;
    if (keys.length === 0) return [];
    if (remote && link) {
      const answer = await link.run(() => remote.getMany<T>(keys));
      if (answer.ok) return answer.value.map((v) => v ?? undefined);
    }
    return (await local.getMany<T>(keys)).map((v) => v ?? undefined);
  }

  async set(key: string, value: T, ttlMs?: number): Promise<void> {
    const { remote, link, local, pending } = this.parts;
    await local.set(key, value, ttlMs);
    if (!remote || !link) return;
    const answer = await link.run(() => remote.set(key, value, ttlMs));
    if (!answer.ok) await pending?.set(key, "set");
  }

  async delete(key: string): Promise<boolean> {
    const { remote, link, local, pending } = this.parts;
    const here = await local.delete(key);
    if (!remote || !link) return here;
    const answer = await link.run(() => remote.delete(key));
    if (!answer.ok) await pending?.set(key, "delete");
    return here || (answer.ok && answer.value);
  }

  async entries(): Promise<{ entries: Array<[string, T]>; complete: boolean }> {
    const { remote, link, local, mirror } = this.parts;
    if (remote && link) {
      const answer = await link.run(() => allEntries(remote));
      if (answer.ok) {
        if (mirror) await mirrorInto(local, answer.value);
        return { entries: answer.value, complete: true };
      }
    }
    return { entries: await allEntries(local), complete: !remote };
  }

  /**
   * Pushes what was written locally while the shared store was down (all: every local entry, for
   * a store that lost its data; only kept namespaces, mirror); stops at the first failure.
   */
  async republish(all = false): Promise<void> {
    const { remote, link, local, pending, mirror } = this.parts;
    if (!remote || !link || !pending) return;
    if (all && mirror) {
      for (const [key] of await allEntries(local)) await pending.set(key, "set");
    }
    for (const [key, op] of await allEntries(pending)) {
      const value = op === "set" ? await local.get<T>(key) : undefined;
      const answer = await link.run(async () => {
        if (value !== undefined) await remote.set(key, value);
        else await remote.delete(key);
      });
      if (!answer.ok) return;
      await pending.delete(key);
    }
  }
}

async function mirrorInto<V>(local: Keyv<V>, entries: Array<[string, V]>): Promise<void> {
  const known = new Set((await allEntries(local)).map(([key]) => key));
  for (const [key, value] of entries) if (!known.has(key)) await local.set(key, value);
}
