import type Keyv from "keyv";
import { openNodeDb } from "../db/node-db.js";
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
  // One adapter per namespace: a keyv adapter carries a single namespace.
  const open = <T>(namespace: string) => openNodeDb<T>(home, namespace, { throwOnErrors: true });
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
