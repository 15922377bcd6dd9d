import type { NodeConfig } from "../config/index.js";
import type { Logger } from "../logging/index.js";
import { ModelEvents } from "../events/model-events.js";
import { HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import type { Catalog } from "../catalog/catalog.js";
import { openCatalog, type CatalogTuning } from "../catalog/open-catalog.js";
import { createRunnerEngine, type RunnerEngine } from "../engine/runner/runner-engine.js";
import { embeddedTemplateCheck, validateGgufFiles } from "../engine/gguf-check.js";
import { TemplateSandbox } from "../engine/template-sandbox.js";
import { engineSettingsFrom } from "../engine/engine-settings.js";
import { NodeMetrics } from "../metrics/node-metrics.js";
import type { SourceDefaults } from "../plugin/loader.js";
import type { Resolver } from "../resolver/resolver.js";
import type { SourceChain } from "../resolver/source-chain.js";
import { openResolverStack } from "../resolver/open-resolver.js";
import { createCatalogService } from "../services/catalog-service.js";
import { createHealthService, HealthState } from "../services/health-service.js";
import { HostLoad } from "../host/host-load.js";
import { createInferenceService } from "../services/inference-service.js";
import { createResolverService } from "../services/resolver-service.js";
import { SERVED_SERVICE_NAMES, type NodeServices } from "../services/routes.js";
import { Store } from "../store/store.js";
import { prepareNodeDb } from "../db/node-db.js";
import { openStateStore, type StateStore } from "../state/state-store.js";
import { Fleet } from "../fleet/fleet.js";
import type { LiveFiles } from "../transfer/live-files.js";
import { openLeaseBackend } from "../fleet/lease-backend.js";

/** Every component of one node, built once, in dependency order. */
export interface NodeComponents {
  /** Model lifecycle events: resolver, store and engine publish, the catalog listens. */
  events: ModelEvents;
  health: HealthState;
  /** The model store under config.home. */
  store: Store;
  /** What models this node offers (supported + registered) and their states. */
  catalog: Catalog;
  /** The effective source chain. */
  sources: SourceChain;
  /** Model id or adapter reference → verified local files. */
  resolver: Resolver;
  /** Inference with node-llama-cpp in a supervised runner process (started on the first request). */
  engine: RunnerEngine;
  /** Prometheus metrics, fed by the events, the call interceptor and a scrape-time probe. */
  metrics: NodeMetrics;
  /** State a fleet shares: registrations, hub info, node directory, download leases. */
  state: StateStore;
  /** The files the transfer engine is downloading now, and how far each is verified (the blob route follows them). */
  downloads: LiveFiles;
  /** Membership of a fleet; undefined without LLMLB_STATE_URL. */
  fleet: Fleet | undefined;
  services: NodeServices;
  /** Closes the components, the last built first. */
  close(): Promise<void>;
}

export interface ComposeOptions {
  config: NodeConfig;
  logger: Logger;
  /** Aborted when the node shuts down; long-lived streams end on it. */
  shutdownSignal: AbortSignal;
  catalogTuning?: Partial<CatalogTuning>;
  /** The default source chain and the built-ins' node-level options; none without it. */
  sourceDefaults?: SourceDefaults;
}

/**
 * The node's composition root: store → catalog (over the store) → sources and resolver (over the
 * catalog's directory) → engine (over the catalog, store and resolver) → services. When a step
 * fails, what was built is closed before the error is rethrown.
 */
export async function composeNode(options: ComposeOptions): Promise<NodeComponents> {
  const { config, logger, shutdownSignal } = options;
  const closers: Array<() => Promise<void> | void> = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch (err) {
        logger.warn({ err }, "error while closing");
      }
    }
  };
  try {
    const events = new ModelEvents();
    const health = new HealthState(SERVED_SERVICE_NAMES);
    // Before anything opens node.db: a corrupt file is moved aside and rebuilt, an unwritable home stops start-up with one clear error.
    await prepareNodeDb(config.home, logger);
    const state = await openStateStore(config, logger);
    closers.push(() => state.close());
    const store = await Store.open({ home: config.home, logger, events });
    closers.push(() => store.close());
    const fleet = state.shared ? openFleet(config, state, events, store, logger) : undefined;
    if (fleet) closers.push(() => fleet.close());
    const templates = new TemplateSandbox();
    closers.push(() => templates.close());
    const opened = await openCatalog({ config, logger, events, store, state, templates, ...(options.catalogTuning ? { tuning: options.catalogTuning } : {}) });
    closers.push(() => opened.close());
    const { catalog } = opened;
    const stack = await openResolverStack({
      config, logger, events, store, models: catalog.directory, ...(options.sourceDefaults ? { sourceDefaults: options.sourceDefaults } : {}),
      ...(fleet ? { fleet: { view: fleet.view, downloads: fleet } } : {}),
      validate: (files, kind) => validateGgufFiles(files, kind, kind === "model" ? embeddedTemplateCheck(templates) : undefined),
    });
    closers.push(() => stack.close());
    const engine = createRunnerEngine({
      settings: engineSettingsFrom(config),
      logLevel: config.logLevel,
      crashBackoffMs: config.runnerCrashBackoffSeconds * 1000,
      hangTimeoutMs: config.runnerHangTimeout,
      loadHangTimeoutMs: config.runnerLoadHangTimeout,
      cpus: config.runnerCpus,
      models: { locate: (id, o) => stack.resolver.locateModel(id, o) },
      adapters: { locate: (id) => store.adapterFile(id) },
      events,
      logger: logger.child({ component: "engine" }),
    });
    closers.push(() => engine.close());
    // Models installed before this version (or by hand) are validated once before anything loads them.
    await stack.checks.checkInstalledModels(events, logger);
    await stack.resolver.recallLocalModels(catalog.entries(), shutdownSignal);
    const metrics = new NodeMetrics(events, async () =>
      (await engine.list()).map((m) => ({ modelId: m.modelId, queued: m.queuedRequests, active: m.activeRequests })),
    );
    const draining = drainSignal(health, shutdownSignal);
    const services: NodeServices = {
      catalog: createCatalogService(catalog, draining),
      resolver: createResolverService(stack.resolver, stack.sources),
      inference: createInferenceService(engine, catalog.directory, new HostLoad(), logger.child({ component: "engine" })),
      health: createHealthService(health, draining),
    };
    return { events, health, store, catalog, sources: stack.sources, resolver: stack.resolver, downloads: stack.transfer.live, engine, metrics, services, state, fleet, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** The fleet membership of a node with a shared state store; it joins once its HTTP URL is known. */
function openFleet(config: NodeConfig, state: StateStore, events: ModelEvents, store: Store, logger: Logger): Fleet {
  return new Fleet({
    state,
    leases: openLeaseBackend(config.stateUrl),
    apiKey: config.apiKey,
    events,
    readyModels: async () => (await store.listModels()).map((m) => m.id),
    logger,
  });
}

/**
 * Aborted when the node starts draining (health NOT_SERVING, before the listeners wait for open
 * calls) or shuts down, so WatchModels and health Watch streams end instead of holding the drain up.
 */
function drainSignal(health: HealthState, shutdownSignal: AbortSignal): AbortSignal {
  const controller = new AbortController();
  const off = health.onChange(() => {
    if (health.statusOf("") !== HealthCheckResponse_ServingStatus.SERVING) controller.abort();
  });
  shutdownSignal.addEventListener("abort", () => controller.abort(), { once: true });
  controller.signal.addEventListener("abort", off, { once: true });
  return controller.signal;
}
