import fs from "node:fs";
import path from "node:path";
import Keyv from "keyv";
import KeyvSqlite from "@keyv/sqlite";
import type { HubStats } from "./hub-info-cache.js";
import type { RegistrationRecord } from "./registration-store.js";

/** keyv namespaces of the catalog inside <home>/node.db (the store's index uses its own). */
export const REGISTRATIONS_NAMESPACE = "catalog-registrations";
export const HUB_INFO_NAMESPACE = "catalog-hub-info";

export interface CatalogDb {
  registrations: Keyv<RegistrationRecord>;
  hubInfo: Keyv<HubStats>;
  close(): Promise<void>;
}

/** Opens the catalog's two keyv namespaces in <home>/node.db (SQLite, shared with other components). */
export function openCatalogDb(home: string): CatalogDb {
  fs.mkdirSync(home, { recursive: true });
  const uri = `sqlite://${path.join(home, "node.db")}`;
  // One adapter per namespace: a keyv adapter carries a single namespace.
  const open = <T>(namespace: string) =>
    new Keyv<T>({ store: new KeyvSqlite({ uri, busyTimeout: 10_000 }), namespace, throwOnErrors: true });
  const registrations = open<RegistrationRecord>(REGISTRATIONS_NAMESPACE);
  const hubInfo = open<HubStats>(HUB_INFO_NAMESPACE);
  return {
    registrations,
    hubInfo,
    async close() {
      await Promise.allSettled([registrations.disconnect(), hubInfo.disconnect()]);
    },
  };
}
