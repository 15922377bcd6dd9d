import type { StateStore } from "../state/state-store.js";
import type { KvNamespace } from "../state/shared-kv.js";
import type { HubStats } from "./hub-info-cache.js";
import type { RegistrationRecord } from "./registration-store.js";

/** keyv namespaces of the catalog (in <home>/node.db, and in the shared store of a fleet). */
export const REGISTRATIONS_NAMESPACE = "catalog-registrations";
export const HUB_INFO_NAMESPACE = "catalog-hub-info";

export interface CatalogDb {
  registrations: KvNamespace<RegistrationRecord>;
  hubInfo: KvNamespace<HubStats>;
}

/** The catalog's two namespaces of the node's state store. */
export function openCatalogDb(state: StateStore): CatalogDb {
  return {
    // Registrations other nodes made are mirrored locally: a node restarted while the shared store is down still serves them.
    registrations: state.namespace<RegistrationRecord>(REGISTRATIONS_NAMESPACE, { mirror: true }),
    hubInfo: state.namespace<HubStats>(HUB_INFO_NAMESPACE),
  };
}
