import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import { LlmlbError, modelNotSupported, readOnlyCopy } from "../errors/index.js";
import { chatTemplateProblem } from "../engine/chat-template-check.js";
import type { TemplateSandbox } from "../engine/template-sandbox.js";
import type { ModelEvents } from "../events/model-events.js";
import type { Model } from "../gen/llmlb/node/v1/model_pb.js";
import type { Logger } from "../logging/index.js";
import { validateModelId } from "../store/model-id.js";
import { ChangeThrottle } from "./change-throttle.js";
import { baseName } from "./gguf-files.js";
import type { HubClient } from "./hub-client.js";
import type { HubInfoCache } from "./hub-info-cache.js";
import { encodePageToken, matchesQuery, searchText, staleTokenError, type ListQuery } from "./list-query.js";
import type { ActiveDownload } from "./lock-poller.js";
import { LockPoller, type ActiveDownloadsReader } from "./lock-poller.js";
import { sameEntry, type ModelDirectory, type ModelEntry } from "./model-entry.js";
import { toModelProto } from "./model-proto.js";
import { ModelStates, type ModelStatus } from "./model-states.js";
import { planRegistration, type RegisterInput } from "./register-model.js";
import type { RegistrationStore } from "./registration-store.js";
import type { AdapterInfo, CatalogStorePort } from "./store-port.js";
import { WatchHub, type WatchItem } from "./watch-hub.js";

export interface CatalogOptions {
  supported: readonly ModelEntry[];
  registrations: RegistrationStore;
  hub: HubClient;
  hubInfo: HubInfoCache;
  events: ModelEvents;
  /** The model store, seen through the catalog's port. */
  store: CatalogStorePort;
  readActiveDownloads: ActiveDownloadsReader;
  logger: Logger;
  /** Where a registered chat template is test-rendered within bounds. */
  templates: TemplateSandbox;
  /** Progress changes per model reach watchers at most once per this interval (default 250 ms: ~4/s). */
  progressIntervalMs?: number;
  /** Lock polling interval (default 1000 ms). */
  lockPollMs?: number;
  /**
   * Registrations are shared with other nodes (LLMLB_STATE_URL): they are re-read this often
   * (ms), and at once when an unknown id is asked for. Undefined on a single node.
   */
  registrationSyncMs?: number;
}

export interface ListResult {
  models: Model[];
  nextPageToken: string;
  totalSize: number;
}

export interface DeleteResult {
  /** The model after deletion; undefined when its registration was removed. */
  model?: Model;
  freedBytes: number;
  /** Something the caller asked for that did not happen, e.g. unregistering a supported model. */
  notice?: string;
}

const UNSUPPORTED: ModelStatus = Object.freeze({ state: "unsupported" });

interface Item {
  entry: ModelEntry;
  /** Grows with each model added: the page order, and what a page token points after. */
  seq: number;
  haystack: string;
  lowerTags: string[];
  /** Cached wire form; cleared on every change. */
  proto: Model | undefined;
}

/**
 * What models this node offers and what state each is in: supported_models.json plus
 * registrations, with states derived from lifecycle events, the store and other processes'
 * locks. Every read is answered from memory; the Hub is only ever asked in the background
 * (popularity) or by RegisterModel.
 */
export class Catalog {
  private readonly items = new Map<string, Item>();
  /** Supported models in file order, then registered ones by registration time. */
  private readonly order: string[] = [];
  private nextSeq = 0;
  /** Tells this catalog's page tokens from a previous process's, whose numbers mean other models. */
  private readonly epoch = randomBytes(4).toString("hex");
  private readonly idsByRepo = new Map<string, Set<string>>();
  private readonly pendingIds = new Set<string>();
  private readonly states = new ModelStates();
  private readonly watchers = new WatchHub();
  private readonly throttle: ChangeThrottle;
  private readonly locks: LockPoller;
  private readonly unsubscribe: Array<() => void> = [];
  private syncTimer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private closed = false;

  /** Lookup by id for the resolver and engine; in a fleet, an unknown id re-reads the shared registrations first. */
  readonly directory: ModelDirectory = {
    get: async (id) => {
      if (!this.items.has(id) && this.options.registrationSyncMs !== undefined) await this.syncRegistrations();
      return this.items.get(id)?.entry;
    },
  };

  private constructor(private readonly options: CatalogOptions) {
    this.throttle = new ChangeThrottle(options.progressIntervalMs ?? 250, (id) => this.publish(id));
    this.locks = new LockPoller({
      read: options.readActiveDownloads,
      onPoll: (downloads) => this.applyLocks(downloads),
      intervalMs: options.lockPollMs ?? 1000,
      lingerMs: 10_000,
      watched: () => this.watchers.size > 0,
      logger: options.logger,
    });
  }

  static async open(options: CatalogOptions, registered?: Array<{ entry: ModelEntry }>): Promise<Catalog> {
    const catalog = new Catalog(options);
    for (const entry of options.supported) catalog.add(entry);
    for (const { entry } of registered ?? (await options.registrations.loadAll())) {
      if (catalog.items.has(entry.id)) {
        options.logger.warn({ modelId: entry.id }, "a registered model has the id of a supported model; the supported one wins");
        continue;
      }
      catalog.add(entry);
    }
    await options.hubInfo.warm(catalog.idsByRepo.keys());
    catalog.unsubscribe.push(options.hubInfo.onUpdate((repo) => catalog.hubInfoChanged(repo)));
    catalog.unsubscribe.push(catalog.states.onChange((id, progressOnly) => catalog.changed(id, progressOnly)));
    catalog.unsubscribe.push(
      options.events.on((event) => {
        catalog.states.apply(event);
        // A finished transfer: fill in size, date and revision from the store, off the hot path.
        if (event.type === "transfer-finished" && catalog.items.has(event.modelId)) void catalog.refreshLocal(event.modelId);
      }),
    );
    await catalog.syncWithStore();
    await catalog.locks.poll();
    catalog.scheduleRegistrationSync();
    return catalog;
  }

  /**
   * Brings registrations made or removed by other nodes of the fleet into this catalog. Removals
   * are applied only from a complete answer of the shared store (never from this node's copy alone).
   */
  syncRegistrations(): Promise<void> {
    this.syncing ??= this.readRegistrations().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private async readRegistrations(): Promise<void> {
    let loaded: Awaited<ReturnType<RegistrationStore["load"]>>;
    try {
      loaded = await this.options.registrations.load();
    } catch (err) {
      this.options.logger.debug({ err }, "could not re-read registrations");
      return;
    }
    const seen = new Set<string>();
    for (const { entry } of loaded.records) {
      seen.add(entry.id);
      if (this.items.has(entry.id) || this.pendingIds.has(entry.id)) continue;
      this.add(entry);
      await this.refreshLocal(entry.id);
      this.throttle.push(entry.id, false);
      this.options.logger.info({ modelId: entry.id, repo: entry.repo }, "model registered by another node");
    }
    if (!loaded.complete) return;
    for (const id of [...this.order]) {
      const item = this.items.get(id)!;
      if (item.entry.origin !== "registered" || seen.has(id) || this.pendingIds.has(id)) continue;
      const status = this.states.get(id);
      if (status.state === "downloading" || status.state === "loaded") continue;
      const last = this.protoOf(id, false);
      this.remove(id);
      this.watchers.publish({ id, model: last, removed: true, progressOnly: false });
      this.options.logger.info({ modelId: id }, "model unregistered by another node");
    }
  }

  private scheduleRegistrationSync(): void {
    const every = this.options.registrationSyncMs;
    if (every === undefined || this.closed) return;
    this.syncTimer = setTimeout(() => {
      void this.syncRegistrations().finally(() => this.scheduleRegistrationSync());
    }, every);
    this.syncTimer.unref();
  }

  /** Marks every model that is on disk READY (start-up). */
  private async syncWithStore(): Promise<void> {
    try {
      const orphans: string[] = [];
      for (const { id, local } of await this.options.store.listModels()) {
        if (!this.items.has(id)) orphans.push(id);
        else if (!this.items.get(id)!.entry.unsupportedReason) this.states.setLocal(id, local);
      }
      if (orphans.length > 0) {
        this.options.logger.warn({ models: orphans }, `models on disk that the catalog no longer lists (${orphans.join(", ")}): they are not served; free them with \`llmlb-node rm <id>\` (DeleteModel)`);
      }
    } catch (err) {
      this.options.logger.warn({ err }, "could not list the models on disk; they show as AVAILABLE until used");
    }
  }

  /** Every entry: supported models in file order, then registered ones. */
  entries(): ModelEntry[] {
    return this.order.map((id) => this.items.get(id)!.entry);
  }

  get size(): number {
    return this.order.length;
  }

  list(query: ListQuery): ListResult {
    this.locks.demand();
    if (query.cursor && query.cursor.catalogEpoch !== this.epoch) throw staleTokenError();
    const filtered = query.state !== undefined || query.tag !== undefined || query.text !== undefined;
    const matching = filtered
      ? this.order.filter((id) => {
          const item = this.items.get(id)!;
          return matchesQuery(query, this.statusOf(id).state, item.lowerTags, item.haystack);
        })
      : this.order;
    // this.order is in seq order (models are appended, and removing one keeps the others' order).
    const afterSeq = query.cursor?.afterSeq ?? -1;
    const start = firstIndexAfter(matching, (id) => this.items.get(id)!.seq, afterSeq);
    const page = matching.slice(start, start + query.pageSize);
    const last = page.at(-1);
    return {
      models: page.map((id) => this.protoOf(id, true)),
      nextPageToken: last !== undefined && start + page.length < matching.length ? encodePageToken({ afterSeq: this.items.get(last)!.seq, catalogEpoch: this.epoch }, query.filterKey) : "",
      totalSize: matching.length,
    };
  }

  /**
   * A copy in the store of a model the catalog no longer lists (dropped from supported_models.json):
   * nothing else can remove it, so it is deleted like any other; an id that is not on disk either
   * stays MODEL_NOT_SUPPORTED.
   */
  private async deleteOrphan(id: string): Promise<DeleteResult> {
    if (!(await this.options.store.getModel(id))) throw modelNotSupported(id);
    const { freedBytes } = await this.options.store.deleteModel(id);
    this.options.logger.info({ modelId: id, freedBytes }, "deleted the files of a model the catalog no longer lists");
    return { freedBytes, notice: `${id} is no longer in the catalog (supported_models.json or a registration); its files were removed` };
  }

  get(id: string): Model {
    validateModelId(id);
    this.locks.demand();
    if (!this.items.has(id)) throw modelNotSupported(id);
    return this.protoOf(id, true);
  }

  /** A registered template is rendered by the node for every chat: it must render within the bounds now. */
  private async assertUsableTemplate(template: string): Promise<void> {
    if (!template.trim()) return;
    const problem = await chatTemplateProblem(this.options.templates, template, true);
    if (!problem) return;
    throw new LlmlbError(
      "INVALID_CHAT_TEMPLATE",
      `chat_template was refused: ${problem.message} (a test render with sample conversations, limited to ${this.options.templates.limits.timeMs} ms and ${this.options.templates.limits.maxOutputChars} characters). Fix the template or register without one to use the GGUF's own`,
      { field: "chat_template", problem: problem.kind },
    );
  }

  async register(input: RegisterInput, signal?: AbortSignal): Promise<{ model: Model; warnings: string[]; availableFiles: string[] }> {
    const explicit = input.id.trim();
    // A registration already there may be this one sent again (a client retrying after its connection dropped): compared once planned.
    if (explicit && this.items.get(explicit)?.entry.origin !== "registered") this.assertFreeId(explicit);
    await this.assertUsableTemplate(input.chatTemplate);
    const plan = await planRegistration(input, this.options.hub, signal);
    const { entry } = plan;
    const existing = this.items.get(entry.id);
    if (existing?.entry.origin === "registered" && sameEntry(existing.entry, entry)) {
      return { model: this.protoOf(entry.id, false), warnings: plan.warnings, availableFiles: plan.availableFiles };
    }
    this.assertFreeId(entry.id, explicit ? undefined : entry.files[0]);
    this.pendingIds.add(entry.id);
    try {
      await this.options.registrations.add({ entry, registeredAt: Date.now() });
      this.add(entry);
    } finally {
      this.pendingIds.delete(entry.id);
    }
    await this.refreshLocal(entry.id);
    this.throttle.push(entry.id, false);
    this.options.logger.info({ modelId: entry.id, repo: entry.repo, files: entry.files }, "model registered");
    return { model: this.protoOf(entry.id, false), warnings: plan.warnings, availableFiles: plan.availableFiles };
  }

  async delete(id: string, removeRegistration: boolean): Promise<DeleteResult> {
    validateModelId(id);
    const item = this.items.get(id);
    if (!item) return this.deleteOrphan(id);
    const status = this.states.get(id);
    if (status.state === "downloading") {
      const who = status.external ? "another process is downloading it" : "it is downloading";
      throw new LlmlbError("MODEL_IN_USE", `cannot delete ${id}: ${who}; wait for the download or cancel it first (a pull started over HTTP or the dashboard: DELETE /v0/models/${id}/pull; llmlb-node pull: Ctrl-C)`, { model_id: id });
    }
    if (status.state === "loaded") {
      throw new LlmlbError("MODEL_IN_USE", `cannot delete ${id}: it is loaded; unload it first`, { model_id: id });
    }
    if (this.states.isLoading(id)) {
      // Its requests wait for the load: removing the file under it failed them all as an invalid file.
      throw new LlmlbError("MODEL_IN_USE", `cannot delete ${id}: it is being loaded for a request; unload it once loaded, then delete it`, { model_id: id });
    }
    if (!removeRegistration && status.local && !(await this.options.store.getModel(id))) throw readOnlyCopy(id, status.local.path);
    const { freedBytes } = await this.options.store.deleteModel(id);
    // A concurrent DeleteModel with remove_registration may have removed it meanwhile.
    if (!this.items.has(id)) throw modelNotSupported(id);
    this.states.apply({ type: "deleted", modelId: id });
    if (!removeRegistration) return { model: this.protoOf(id, false), freedBytes };
    if (item.entry.origin === "supported") {
      return {
        model: this.protoOf(id, false),
        freedBytes,
        notice: `${id} is a supported model (supported_models.json) and cannot be unregistered; its files were removed and it stays in the catalog`,
      };
    }
    await this.options.registrations.remove(id);
    if (!this.items.has(id)) throw modelNotSupported(id);
    const last = this.protoOf(id, false);
    this.remove(id);
    this.watchers.publish({ id, model: last, removed: true, progressOnly: false });
    this.options.logger.info({ modelId: id }, "model registration removed");
    return { freedBytes };
  }

  /** Streams changes (and first the current state, if asked) until `signal` aborts. */
  watch(ids: readonly string[], includeInitial: boolean, signal: AbortSignal): AsyncGenerator<WatchItem> {
    for (const id of ids) validateModelId(id);
    const stream = this.watchers.watch(ids, signal, () =>
      includeInitial
        ? (ids.length > 0 ? ids.filter((id) => this.items.has(id)) : this.order).map((id) => ({
            id,
            model: this.protoOf(id, false),
            removed: false,
            progressOnly: false,
          }))
        : [],
    );
    this.locks.ensureRunning();
    return stream;
  }

  async listAdapters(): Promise<AdapterInfo[]> {
    return this.options.store.listAdapters();
  }

  async deleteAdapter(id: string): Promise<{ freedBytes: number }> {
    return this.options.store.deleteAdapter(id);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.syncTimer);
    for (const off of this.unsubscribe.splice(0)) off();
    this.locks.close();
    this.throttle.close();
    this.options.hubInfo.close();
  }

  private add(entry: ModelEntry): void {
    this.items.set(entry.id, {
      entry,
      seq: this.nextSeq++,
      haystack: searchText(entry),
      lowerTags: entry.tags.map((t) => t.toLowerCase()),
      proto: undefined,
    });
    this.order.push(entry.id);
    const ids = this.idsByRepo.get(entry.repo) ?? new Set<string>();
    ids.add(entry.id);
    this.idsByRepo.set(entry.repo, ids);
  }

  private remove(id: string): void {
    const item = this.items.get(id);
    if (!item) return;
    this.items.delete(id);
    this.order.splice(this.order.indexOf(id), 1);
    this.idsByRepo.get(item.entry.repo)?.delete(id);
    this.states.forget(id);
  }

  /** `derivedFrom`: the file the id was derived from, when the request gave none. */
  private assertFreeId(id: string, derivedFrom?: string): void {
    const existing = this.items.get(id);
    if (existing || this.pendingIds.has(id)) {
      const what = existing?.entry.origin === "supported" ? "a supported model" : `registered from ${existing?.entry.repo ?? "another request"}`;
      const todo = derivedFrom
        ? `it is the id derived from ${baseName(derivedFrom)}; pass id (llmlb-node register --id) to register it under another name`
        : "choose another id";
      throw new LlmlbError("MODEL_ALREADY_EXISTS", `model ${id} already exists (${what}); ${todo}`, { model_id: id });
    }
  }

  private protoOf(id: string, touchHub: boolean): Model {
    const item = this.items.get(id)!;
    if (touchHub) this.options.hubInfo.refreshIfStale(item.entry.repo);
    item.proto ??= toModelProto(item.entry, this.statusOf(id), this.options.hubInfo.peek(item.entry.repo));
    return item.proto;
  }

  /** An entry this node cannot run is UNSUPPORTED whatever the store or events say. */
  private statusOf(id: string): ModelStatus {
    return this.items.get(id)?.entry.unsupportedReason ? UNSUPPORTED : this.states.get(id);
  }

  /** Hub stats of a repo arrived or changed: its models are rebuilt and watchers told (dashboards show them live). */
  hubInfoChanged(repo: string): void {
    for (const id of this.idsByRepo.get(repo) ?? []) this.changed(id, false);
  }

  private changed(id: string, progressOnly: boolean): void {
    const item = this.items.get(id);
    if (!item) return;
    item.proto = undefined;
    this.throttle.push(id, progressOnly);
  }

  private publish(id: string): void {
    if (!this.items.has(id) || this.watchers.size === 0) return;
    const status = this.states.get(id);
    this.watchers.publish({ id, model: this.protoOf(id, false), removed: false, progressOnly: status.state === "downloading" });
  }

  private async refreshLocal(id: string): Promise<void> {
    try {
      const local = await this.options.store.getModel(id);
      if (this.items.has(id)) this.states.setLocal(id, local);
    } catch (err) {
      this.options.logger.debug({ err, modelId: id }, "could not read a model's local copy");
    }
  }

  private async applyLocks(downloads: ActiveDownload[]): Promise<void> {
    const active = new Set<string>();
    for (const { modelId, progress } of downloads) {
      if (!this.items.has(modelId) || this.states.isTransferringHere(modelId)) continue;
      active.add(modelId);
      this.states.setExternal(modelId, progress);
    }
    for (const id of this.states.externalIds()) {
      if (active.has(id)) continue;
      const local = await this.options.store.getModel(id).catch(() => undefined);
      this.states.clearExternal(id, local);
    }
    await this.forgetRemovedCopies();
    await this.noticeInstalledCopies();
  }

  /**
   * A model another process installed (an in-process `llmlb-node pull` on this home) is READY
   * here too, even when its download lock came and went between two looks.
   */
  private async noticeInstalledCopies(): Promise<void> {
    for (const id of await this.options.store.modelIdsOnDisk()) {
      if (!this.items.has(id) || this.items.get(id)!.entry.unsupportedReason || this.states.get(id).state !== "available") continue;
      const local = await this.options.store.getModel(id).catch(() => undefined);
      if (!local || this.states.get(id).state !== "available") continue;
      this.options.logger.info({ modelId: id, path: local.path }, "the model was installed by another process; it is ready");
      this.states.setLocal(id, local);
    }
  }

  /**
   * A READY model whose files were removed behind the node's back (its directory deleted) is
   * AVAILABLE again, so lists, /v1/models and routers stop offering it. Checked with the locks,
   * while someone looks; a loaded model keeps serving from memory.
   */
  private async forgetRemovedCopies(): Promise<void> {
    for (const id of this.order) {
      const path = this.states.get(id).local?.path;
      if (this.states.get(id).state !== "ready" || !path) continue;
      if (await fs.access(path).then(() => true, () => false)) continue;
      this.options.logger.info({ modelId: id, path }, "the model's files were removed; it is available again");
      this.states.setLocal(id, undefined);
    }
  }
}

/** The index of the first id whose seq is above `afterSeq`, in ids sorted by seq (binary search). */
function firstIndexAfter(ids: readonly string[], seqOf: (id: string) => number, afterSeq: number): number {
  let low = 0;
  let high = ids.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (seqOf(ids[mid]!) <= afterSeq) low = mid + 1;
    else high = mid;
  }
  return low;
}
