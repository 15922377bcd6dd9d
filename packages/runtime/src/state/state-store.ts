import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Keyv } from "keyv";
import { openNodeDb } from "../db/node-db.js";
import type { Logger } from "../logging/index.js";
import { ExpiredRowsSweep, allEntries, openRemoteKv, redactUrl } from "./remote-store.js";
import { SharedKv, type KvNamespace } from "./shared-kv.js";
import { StateLink } from "./state-link.js";

export interface StateTuning {
  opTimeoutMs: number;
  /** The first contact at start-up may take this long (connecting, creating tables). */
  connectTimeoutMs: number;
  probeIntervalMs: number;
}

export const DEFAULT_STATE_TUNING: StateTuning = { opTimeoutMs: 5_000, connectTimeoutMs: 15_000, probeIntervalMs: 2_000 };

/**
 * Where the node keeps state that a fleet shares (registrations, hub info, the node directory,
 * download leases): always in <home>/node.db, and with LLMLB_STATE_URL also in Redis or
 * PostgreSQL, which other nodes read.
 */
export interface StateStore {
  /** True when a shared store is configured (it may be unreachable right now). */
  readonly shared: boolean;
  /** The shared store's connection state; undefined on a single node. */
  readonly link: StateLink | undefined;
  /** The shared store's URL without credentials, or "node.db". */
  readonly name: string;
  namespace<T>(name: string, options?: { mirror?: boolean }): KvNamespace<T>;
  /** A namespace in the shared store only (directory, leases: meaningless on one node); undefined on a single node. */
  remoteNamespace<T>(name: string): KvNamespace<T> | undefined;
  close(): Promise<void>;
}

export async function openStateStore(
  options: { home: string; stateUrl: string },
  logger: Logger,
  tuning: Partial<StateTuning> = {},
): Promise<StateStore> {
  const t = { ...DEFAULT_STATE_TUNING, ...tuning };
  const opened: Array<Keyv<unknown>> = [];
  const track = <K extends Keyv<never>>(kv: K): K => {
    opened.push(kv as unknown as Keyv<unknown>);
    return kv;
  };
  const local = <T>(name: string) => track(openNodeDb<T>(options.home, name, { throwOnErrors: true }));
  const url = options.stateUrl;
  const name = url ? redactUrl(url) : "node.db";
  let link: StateLink | undefined;
  const sweep = new ExpiredRowsSweep(logger);
  // Each node remembers which incarnation of the shared store it has published its state into; a
  // store that is new, or came back without its data, has another (or none): publish everything.
  let publishAll = false;
  if (url) {
    const markerKv = track(openRemoteKv<string>(url, "fleet", sweep));
    const knownKv = local<string>("fleet-incarnation");
    let known = await knownKv.get("published-into");
    link = new StateLink({
      name,
      opTimeoutMs: t.opTimeoutMs,
      probeIntervalMs: t.probeIntervalMs,
      probe: async () => {
        const current = await markerKv.get("incarnation");
        return current !== undefined && current === known;
      },
      markIntact: async () => {
        let current = await markerKv.get("incarnation");
        if (current === undefined) {
          current = randomUUID();
          await markerKv.set("incarnation", current);
        }
        known = current;
        await knownKv.set("published-into", current);
      },
      logger,
    });
    publishAll = (await link.connect(t.connectTimeoutMs)) === false;
  }
  const remote = <T>(ns: string) => (url ? track(openRemoteKv<T>(url, ns, sweep)) : undefined);
  return {
    shared: Boolean(url),
    link,
    name,
    namespace<T>(ns: string, nsOptions: { mirror?: boolean } = {}) {
      const kv = new SharedKv<T>({
        local: local<T>(ns),
        ...(url && link
          ? { remote: remote<T>(ns), pending: local<"set" | "delete">(`${ns}-unpublished`), link, mirror: nsOptions.mirror ?? false }
          : {}),
      });
      if (link) void kv.republish(publishAll);
      return kv;
    },
    remoteNamespace<T>(ns: string) {
      if (!url || !link) return undefined;
      const remoteKv = remote<T>(ns)!;
      const l = link;
      return {
        get: async (key) => {
          const a = await l.run(() => remoteKv.get<T>(key));
          return a.ok ? (a.value ?? undefined) : undefined;
        },
        getMany: async (keys) => {
          const a = await l.run(() => remoteKv.getMany<T>(keys));
          return a.ok ? a.value.map((v) => v ?? undefined) : keys.map(() => undefined);
        },
        set: async (key, value, ttlMs) => {
          await l.run(() => remoteKv.set(key, value, ttlMs));
        },
        delete: async (key) => {
          const a = await l.run(() => remoteKv.delete(key));
          return a.ok && a.value;
        },
        entries: async () => {
          const a = await l.run(() => allEntries(remoteKv));
          return a.ok ? { entries: a.value, complete: true } : { entries: [], complete: false };
        },
      };
    },
    async close() {
      link?.close();
      // A shared store that is down would hold a polite disconnect up: shutdown does not wait for it.
      await Promise.race([Promise.allSettled(opened.map((kv) => kv.disconnect())), sleep(t.opTimeoutMs).then(() => undefined)]);
    },
  };
}
