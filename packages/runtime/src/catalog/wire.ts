import { LlmlbError } from "../errors/index.js";
import { HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { listDownloadLocks } from "../locks/download-lock.js";
import type { NodeRuntime } from "../node-runtime.js";
import type { CachedModel, Store } from "../store/store.js";
import { createCatalogService } from "../services/catalog-service.js";
import { Catalog } from "./catalog.js";
import { openCatalogDb } from "./catalog-db.js";
import { HubClient } from "./hub-client.js";
import { HubInfoCache } from "./hub-info-cache.js";
import { RegistrationStore } from "./registration-store.js";
import type { ActiveDownload } from "./lock-poller.js";
import type { CatalogStorePort } from "./store-port.js";
import type { LocalCopyInfo } from "./model-states.js";
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
}

export const DEFAULT_CATALOG_TUNING: CatalogTuning = {
  registerTimeoutMs: 8_000,
  hubInfoTimeoutMs: 5_000,
  hubInfoTtlMs: 10 * 60_000,
  hubInfoRetryMs: 60_000,
  hubInfoConcurrency: 4,
};

/**
 * Wires the catalog into a runtime: loads supported_models.json (an invalid file stops start-up
 * with one message), opens registrations and the hub-info cache in <home>/node.db, and sets
 * runtime.models and runtime.services.catalog.
 */
export async function wireCatalog(runtime: NodeRuntime, tuning: Partial<CatalogTuning> = {}): Promise<Catalog> {
  const t = { ...DEFAULT_CATALOG_TUNING, ...tuning };
  const { config, logger } = runtime;
  const supported = loadSupportedModels(config.supportedModels, { optional: config.origins.supportedModels.kind === "default" });
  if (supported.length === 0) logger.warn({ file: config.supportedModels }, "no supported models file found; the catalog holds registered models only");

  const db = openCatalogDb(config.home);
  runtime.onClose(() => db.close());
  const hubOptions = { endpoint: config.hfEndpoint, ...(config.hfToken ? { token: config.hfToken } : {}) };
  const statsClient = new HubClient({ ...hubOptions, timeoutMs: t.hubInfoTimeoutMs });
  // The cache is built before the catalog it notifies.
  const late: { catalog?: Catalog } = {};
  const hubInfo = new HubInfoCache({
    kv: db.hubInfo,
    ttlMs: t.hubInfoTtlMs,
    retryAfterMs: t.hubInfoRetryMs,
    concurrency: t.hubInfoConcurrency,
    logger,
    onUpdate: (repo) => late.catalog?.hubInfoChanged(repo),
    fetchStats: async (repo, signal) => {
      const lookup = await statsClient.modelInfo(repo, { signal });
      return lookup.ok ? { downloads: lookup.info.downloads ?? 0, likes: lookup.info.likes ?? 0 } : undefined;
    },
  });

  let port: CatalogStorePort | undefined;
  const catalog = await Catalog.open({
    supported,
    registrations: new RegistrationStore(db.registrations, logger),
    hub: new HubClient({ ...hubOptions, timeoutMs: t.registerTimeoutMs }),
    hubInfo,
    events: runtime.events,
    store: () => (runtime.store ? (port ??= storePort(runtime.store)) : undefined),
    readActiveDownloads: () => activeDownloads(config.home),
    logger,
  });
  late.catalog = catalog;
  runtime.onClose(() => catalog.close());
  runtime.models = catalog.directory;
  runtime.services.catalog = createCatalogService(catalog, drainSignal(runtime));
  logger.debug({ models: catalog.size, file: config.supportedModels }, "catalog ready");
  return catalog;
}

/**
 * Aborted when the node starts draining (health NOT_SERVING, before the listeners wait for open
 * calls) or shuts down, so WatchModels streams end instead of holding the drain up.
 */
function drainSignal(runtime: NodeRuntime): AbortSignal {
  const controller = new AbortController();
  const off = runtime.health.onChange(() => {
    if (runtime.health.statusOf("") !== HealthCheckResponse_ServingStatus.SERVING) controller.abort();
  });
  runtime.shutdownSignal.addEventListener("abort", () => controller.abort(), { once: true });
  controller.signal.addEventListener("abort", off, { once: true });
  return controller.signal;
}

/** The store methods the catalog uses. */
export type CatalogStore = Pick<Store, "listModels" | "getModel" | "deleteModel" | "listAdapters" | "getAdapter" | "deleteAdapter">;

function localOf(m: CachedModel): LocalCopyInfo {
  return {
    path: m.path,
    sizeOnDiskBytes: m.sizeBytes,
    downloadedAt: m.downloadedAt.getTime(),
    source: m.source,
    ...(m.revision ? { revision: m.revision } : {}),
  };
}

/** The store seen through the catalog's port (freed bytes, ADAPTER_NOT_FOUND, epoch times). */
export function storePort(store: CatalogStore): CatalogStorePort {
  return {
    listModels: async () => (await store.listModels()).map((m) => ({ id: m.id, local: localOf(m) })),
    getModel: async (id) => {
      const m = await store.getModel(id);
      return m && localOf(m);
    },
    deleteModel: async (id) => {
      const before = await store.getModel(id);
      const removed = await store.deleteModel(id);
      return { freedBytes: removed ? (before?.sizeBytes ?? 0) : 0 };
    },
    listAdapters: async () =>
      (await store.listAdapters()).map((a) => ({
        id: a.id,
        ref: a.ref,
        path: a.path,
        sizeBytes: a.sizeBytes,
        sha256: a.sha256,
        source: a.source,
        downloadedAt: a.downloadedAt.getTime(),
      })),
    deleteAdapter: async (id) => {
      const before = await store.getAdapter(id);
      if (!(await store.deleteAdapter(id))) {
        throw new LlmlbError("ADAPTER_NOT_FOUND", `no adapter ${id} on this node; list them with ListAdapters`, { adapter_id: id });
      }
      return { freedBytes: before?.sizeBytes ?? 0 };
    },
  };
}

/** Downloads other processes are running now: the live (not stale) model locks under <home>/.locks. */
async function activeDownloads(home: string): Promise<ActiveDownload[]> {
  return (await listDownloadLocks(home))
    .filter((lock) => !lock.stale)
    .map(({ id, progress }) => ({
      modelId: id,
      progress: { ...progress, fraction: progress.totalBytes > 0 ? Math.min(1, progress.completedBytes / progress.totalBytes) : 0 },
    }));
}
