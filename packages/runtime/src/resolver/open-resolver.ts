import type { ModelDirectory } from "../catalog/model-entry.js";
import type { NodeConfig } from "../config/index.js";
import { ModelEvents } from "../events/model-events.js";
import type { Logger } from "../logging/index.js";
import { loadSources, type SourceDefaults } from "../plugin/loader.js";
import { Store } from "../store/store.js";
import { SharedReservations } from "../store/shared-reservations.js";
import { sweepLeftovers } from "../store/sweep.js";
import { HttpClient } from "../transfer/http-client.js";
import { TransferEngine } from "../transfer/transfer-engine.js";
import type { FleetDownloads } from "../fleet/fleet.js";
import type { FleetView } from "../plugin/contract.js";
import { validateGgufFiles } from "../engine/gguf-check.js";
import { FileChecks, type ValidateFiles } from "./file-checks.js";
import { Resolver } from "./resolver.js";
import { SourceChain } from "./source-chain.js";

export interface ResolverStackOptions {
  config: NodeConfig;
  logger: Logger;
  /** Where model ids are looked up (the catalog's directory in a node). */
  models: ModelDirectory;
  events?: ModelEvents;
  /** An open store to use; without it one is opened under config.home (and closed with the stack). */
  store?: Store;
  /** The default chain and the built-ins' node-level options (the facade passes @llmlb/plugins'). */
  sourceDefaults?: SourceDefaults;
  /** The fleet this node belongs to (LLMLB_STATE_URL): the peer source's view and the hub download lease. */
  fleet?: { view: FleetView; downloads: FleetDownloads };
  /** The HTTP client (default: one configured from config). */
  http?: HttpClient;
  /** The file validation; defaults to the GGUF validation without a template check. */
  validate?: ValidateFiles;
}

/** Store, sources, transfer engine and resolver of one node, wired together. */
export interface ResolverStack {
  store: Store;
  sources: SourceChain;
  transfer: TransferEngine;
  http: HttpClient;
  checks: FileChecks;
  resolver: Resolver;
  events: ModelEvents;
  /** Aborts running resolutions, then closes the sources, the HTTP client and the store it opened. */
  close(): Promise<void>;
}

export async function openResolverStack(options: ResolverStackOptions): Promise<ResolverStack> {
  const { config, logger } = options;
  const events = options.events ?? new ModelEvents();
  const ownStore = options.store === undefined;
  const store = options.store ?? (await Store.open({ home: config.home, logger, events }));
  const closeStore = async () => {
    if (ownStore) await store.close();
  };
  await sweepLeftovers(config.home, logger);
  const http = options.http ?? new HttpClient({ redirects: { allowedPrivateHosts: config.allowedPrivateHosts.map((h) => h.toLowerCase()) } });
  try {
    const sources = new SourceChain(await loadSources(config, logger, options.sourceDefaults), { config, logger, http, fleet: options.fleet?.view });
    const transfer = new TransferEngine({ http, settings: config, logger, sharedReservations: new SharedReservations(config.home) });
    const checks = new FileChecks(store, options.validate ?? ((files, kind) => validateGgufFiles(files, kind)));
    const resolver = new Resolver({
      store, sources, transfer, events, logger, models: options.models, lockWaitTimeoutSeconds: config.lockWaitTimeoutSeconds, checks,
      maxDownloadBytes: config.maxDownloadSize,
      ...(options.fleet ? { fleet: options.fleet.downloads } : {}),
    });
    return {
      store, sources, transfer, http, resolver, events, checks,
      async close() {
        await resolver.close();
        await sources.close();
        await http.close();
        await closeStore();
      },
    };
  } catch (err) {
    await http.close();
    await closeStore();
    throw err;
  }
}
