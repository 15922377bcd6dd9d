import type { NodeConfig } from "../config/index.js";
import { withFraction, type ModelEvents } from "../events/model-events.js";
import type { Logger } from "../logging/index.js";
import { listDownloadLocks } from "../store/download-lock.js";
import type { StateStore } from "../state/state-store.js";
import type { Store } from "../store/store.js";
import type { TemplateSandbox } from "../engine/template-sandbox.js";
import { Catalog } from "./catalog.js";
import { openCatalogDb } from "./catalog-db.js";
import { HubClient } from "./hub-client.js";
import { HubInfoCache } from "./hub-info-cache.js";
import { RegistrationBackup } from "./registration-backup.js";
import { RegistrationStore } from "./registration-store.js";
import type { ActiveDownload } from "./lock-poller.js";
import { storePort } from "./store-port.js";
import { loadSupportedModels } from "./supported-models.js";

/** Timings of the catalog; the defaults are what a node uses. */
export interface CatalogTuning {
  /** RegisterModel's question to the Hub. */
  registerTimeoutMs: number;
  /** Background popularity requests. */
  hubInfoTimeoutMs: number;
  /** How long downloads/likes are cached (the seed's 10 minutes). */
  hubInfoTtlMs: number;
  /** A repo whose popularity could not be fetched is not asked again before this long. */
  hubInfoRetryMs: number;
  hubInfoConcurrency: number;
  /** In a fleet: how often registrations made by other nodes are re-read. */
  registrationSyncMs: number;
}

export const DEFAULT_CATALOG_TUNING: CatalogTuning = {
  registerTimeoutMs: 8_000,
  hubInfoTimeoutMs: 5_000,
  hubInfoTtlMs: 10 * 60_000,
  hubInfoRetryMs: 60_000,
  hubInfoConcurrency: 4,
  registrationSyncMs: 2_000,
};

export interface OpenCatalogOptions {
  config: NodeConfig;
  logger: Logger;
  events: ModelEvents;
  store: Store;
  /** Where registrations and the hub-info cache live (node.db, and the fleet's shared store). */
  state: StateStore;
  /** Where registered chat templates are test-rendered. */
  templates: TemplateSandbox;
  tuning?: Partial<CatalogTuning>;
}

/**
 * Opens the catalog: loads supported_models.json (an invalid file stops start-up with one
 * message), opens registrations and the hub-info cache in the state store, and follows the store.
 * Registrations other nodes make are re-read every registrationSyncMs (and, in a fleet, when the
 * shared store is reachable again): those of a fleet, and those of another node or an in-process
 * CLI on the same home, whose node.db is this one's.
 */
export async function openCatalog(options: OpenCatalogOptions): Promise<{ catalog: Catalog; close(): Promise<void> }> {
  const t = { ...DEFAULT_CATALOG_TUNING, ...options.tuning };
  const { config, logger } = options;
  const supported = loadSupportedModels(config.supportedModels, { optional: config.origins.supportedModels.kind === "default" });
  if (supported.length === 0) logger.warn({ file: config.supportedModels }, "no supported models file found; the catalog holds registered models only");

  const db = openCatalogDb(options.state);
  {
    const hubOptions = { endpoint: config.hfEndpoint, ...(config.hfToken ? { token: config.hfToken } : {}) };
    const statsClient = new HubClient({ ...hubOptions, timeoutMs: t.hubInfoTimeoutMs });
    const hubInfo = new HubInfoCache({
      kv: db.hubInfo,
      ttlMs: t.hubInfoTtlMs,
      retryAfterMs: t.hubInfoRetryMs,
      concurrency: t.hubInfoConcurrency,
      logger,
      fetchStats: async (repo, signal) => {
        const lookup = await statsClient.modelInfo(repo, { signal });
        return lookup.ok ? { downloads: lookup.info.downloads ?? 0, likes: lookup.info.likes ?? 0 } : undefined;
      },
    });
    // In a fleet the shared store holds the registrations (and takes removals made on other nodes): no copy.
    const backup = options.state.shared ? undefined : new RegistrationBackup(config.home, logger);
    const registrations = new RegistrationStore(db.registrations, logger, backup);
    await registrations.restoreFromBackup();
    const catalog = await Catalog.open({
      supported,
      registrations,
      hub: new HubClient({ ...hubOptions, timeoutMs: t.registerTimeoutMs }),
      hubInfo,
      events: options.events,
      store: storePort(options.store),
      readActiveDownloads: () => activeDownloads(config.home),
      logger,
      registrationSyncMs: t.registrationSyncMs,
      templates: options.templates,
    });
    options.state.link?.onRecovered(() => catalog.syncRegistrations());
    logger.debug({ models: catalog.size, file: config.supportedModels }, "catalog ready");
    return {
      catalog,
      async close() {
        catalog.close();
      },
    };
  }
}

/** Downloads other processes are running now: the live (not stale) model locks under <home>/.locks. */
async function activeDownloads(home: string): Promise<ActiveDownload[]> {
  return (await listDownloadLocks(home))
    .filter((lock) => !lock.stale)
    .map(({ id, progress }) => ({
      modelId: id,
      progress: withFraction(progress),
    }));
}
