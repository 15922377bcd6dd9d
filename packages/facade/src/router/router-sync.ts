import type { Logger } from "@llmlb/runtime";
import { ModelState } from "@llmlb/runtime/gen/llmlb/node/v1/model_pb";
import type { NodeClients } from "../clients.js";
import type { PullRegistry } from "../http/v0/pull-registry.js";
import { matchRouterModel, type RouterModelName } from "./model-match.js";
import { allModels, type ModelFacts } from "./node-facts.js";
import { listedModels, RouterClient, routerReason } from "./router-client.js";

export type SyncState = "idle" | "running" | "success" | "failed";

/** `sync_progress` of a heartbeat: the download running now. */
export interface SyncProgress {
  model_id: string;
  file: string;
  downloaded_bytes: number;
  total_bytes: number;
}

/** Models a router lists (`/v0/models`, else `/api/models`), from the first router that answers. */
export async function modelsListedByRouter(routers: readonly RouterClient[], logger: Logger, signal?: AbortSignal): Promise<RouterModelName[] | undefined> {
  for (const router of routers) {
    try {
      for (const path of ["/v0/models", "/api/models"]) {
        const answer = await router.get(path, signal);
        if (answer.status === 200) return listedModels(answer.body);
        logger.warn({ router: router.base, path, status: answer.status, reason: routerReason(answer) }, "router did not list models");
      }
    } catch (err) {
      if (signal?.aborted) throw err;
      logger.warn({ router: router.base, err }, "router unreachable");
    }
  }
  return undefined;
}

/**
 * Start-up sync with the router (LLMLB_PREFETCH with LLMLB_ROUTER_URL): reads the models it lists
 * and pulls, in the background, those this node's catalog knows, can run and does not have. It
 * only ever adds models: a model the router stops listing stays on disk. The state and the
 * running download go into heartbeats.
 */
export class RouterSync {
  private current: SyncState = "idle";
  private running: Promise<string[]> | undefined;
  private again = false;

  constructor(
    private readonly routers: readonly RouterClient[],
    private readonly clients: NodeClients,
    private readonly pulls: PullRegistry,
    private readonly logger: Logger,
  ) {}

  get state(): SyncState {
    return this.current;
  }

  /** Runs a sync; a call while one runs makes it run once more afterwards. Resolves to the models pulled. */
  run(signal?: AbortSignal): Promise<string[]> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      let pulled: string[] = [];
      do {
        this.again = false;
        pulled = await this.once(signal);
      } while (this.again && !signal?.aborted);
      return pulled;
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  /** The first download in progress, as a heartbeat's `sync_progress`. */
  progress(facts: ModelFacts): SyncProgress | null {
    const model = facts.downloading[0];
    if (!model) return null;
    return {
      model_id: model.id,
      file: model.progress?.currentFile || model.filename,
      downloaded_bytes: Number(model.progress?.completedBytes ?? 0n),
      total_bytes: Number(model.progress?.totalBytes ?? 0n),
    };
  }

  private async once(signal?: AbortSignal): Promise<string[]> {
    this.current = "running";
    const listed = await modelsListedByRouter(this.routers, this.logger, signal).catch(() => undefined);
    if (listed === undefined) {
      this.current = "failed";
      return [];
    }
    const catalog = await allModels(this.clients);
    const wanted = new Set<string>();
    let runnable = 0;
    for (const entry of listed) {
      const model = matchRouterModel(catalog, entry);
      if (!model) {
        this.logger.info({ router_model: entry.name, repo: entry.repo, filename: entry.filename }, "router lists a model this node's catalog does not know; skipped");
        continue;
      }
      if (model.state === ModelState.UNSUPPORTED) {
        this.logger.info({ router_model: entry.name, modelId: model.id, reason: model.unsupportedReason }, "router lists a model this node cannot run; skipped");
        continue;
      }
      runnable += 1;
      if (model.state !== ModelState.READY && model.state !== ModelState.LOADED) wanted.add(model.id);
    }
    if (listed.length > 0 && runnable === 0) {
      // Nothing synced is not a success: the router lists models and this node can serve none of them.
      this.logger.warn(
        { router_models: listed.map((m) => m.name), fix: "add them to the catalog (LLMLB_SUPPORTED_MODELS, or POST /v0/models/register {repo, filename})" },
        "router sync found none of the router's models in this node's catalog; nothing synced",
      );
      this.current = "failed";
      return [];
    }
    if (wanted.size) this.logger.info({ models: [...wanted] }, "pulling models listed by the router");
    const outcomes = await Promise.all([...wanted].map((id) => this.pulls.start(id).done));
    this.current = outcomes.every(Boolean) ? "success" : "failed";
    return [...wanted];
  }
}
