import { request } from "undici";
import type { Logger, NodeConfig } from "@llmlb/runtime";
import type { NodeClients } from "./clients.js";
import type { PullRegistry } from "./http/v0/pull-registry.js";

/** Model ids a router lists for this node (`GET {router}/v0/models`), from the first router that answers. */
export async function modelsListedByRouter(config: NodeConfig, logger: Logger, signal?: AbortSignal): Promise<string[]> {
  for (const base of config.routerUrls) {
    try {
      const res = await request(`${base}/v0/models`, {
        headers: config.routerApiKey ? { authorization: `Bearer ${config.routerApiKey}` } : {},
        signal,
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      });
      if (res.statusCode !== 200) {
        await res.body.dump();
        logger.warn({ router: base, status: res.statusCode }, "router did not list models");
        continue;
      }
      const body = (await res.body.json()) as { models?: Array<{ id?: unknown }>; data?: Array<{ id?: unknown }> };
      const list = body.models ?? body.data ?? [];
      return list.map((m) => m.id).filter((id): id is string => typeof id === "string");
    } catch (err) {
      logger.warn({ router: base, err }, "router unreachable");
    }
  }
  return [];
}

/**
 * Opt-in prefetch (LLMLB_PREFETCH with LLMLB_ROUTER_URL): pulls, in the background, the models the
 * router lists that this node's catalog knows and does not have yet. It only ever adds models: a
 * model the router stops listing stays on disk.
 */
export async function prefetchRouterModels(config: NodeConfig, clients: NodeClients, pulls: PullRegistry, logger: Logger, signal?: AbortSignal): Promise<string[]> {
  if (!config.prefetch || config.routerUrls.length === 0) return [];
  const started: string[] = [];
  for (const id of await modelsListedByRouter(config, logger, signal)) {
    const model = await clients.catalog.getModel({ modelId: id }).then((r) => r.model, () => undefined);
    if (!model) {
      logger.info({ modelId: id }, "router lists a model this node's catalog does not know; skipped");
      continue;
    }
    if (pulls.start(id).started) started.push(id);
  }
  if (started.length) logger.info({ models: started }, "prefetching models listed by the router");
  return started;
}
