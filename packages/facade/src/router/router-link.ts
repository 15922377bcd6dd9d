import type { FastifyInstance } from "fastify";
import type { Logger, LogRing, NodeConfig } from "@llmlb/runtime";
import type { NodeClients } from "../clients.js";
import type { PullRegistry } from "../http/v0/pull-registry.js";
import { NODE_VERSION } from "../version.js";
import { advertisedAddress, PushLink } from "./push-link.js";
import { RouterClient } from "./router-client.js";
import { registerRouterRoutes } from "./router-routes.js";
import { modelsListedByRouter, RouterSync } from "./router-sync.js";

/**
 * This node's side of an llmlb router, either era: the routes a router calls, the start-up sync
 * and, for push-era routers, registration and heartbeats. Built before the HTTP listener (for
 * its routes), started once the listener's port is known.
 */
export class RouterLink {
  readonly sync: RouterSync;
  private push: PushLink | undefined;
  private readonly controller = new AbortController();

  constructor(
    private readonly config: NodeConfig,
    private readonly clients: NodeClients,
    private readonly pulls: PullRegistry,
    private readonly logger: Logger,
    private readonly logs: LogRing | undefined,
  ) {
    this.sync = new RouterSync(this.routers(), clients, pulls, logger);
  }

  /** Registers the router-facing routes on the HTTP app. */
  routes(app: FastifyInstance): void {
    registerRouterRoutes(app, this.clients, {
      pulls: this.pulls,
      logs: this.logs,
      version: NODE_VERSION,
      onPush: () => {
        if (this.config.prefetch && this.config.routerUrls.length > 0) void this.runSync();
      },
      routerModel: async (name) => (await modelsListedByRouter(this.routers(), this.logger, this.controller.signal))?.find((m) => m.name === name),
    });
  }

  /** Starts the sync and, unless LLMLB_ROUTER_MODE=poll, the push link to the first router. */
  start(httpPort: number): void {
    const [first] = this.routers();
    if (!first) return;
    const synced = this.config.prefetch ? this.runSync() : undefined;
    if (this.config.routerMode === "poll") return;
    this.push = new PushLink({
      router: first,
      clients: this.clients,
      sync: this.sync,
      logger: this.logger.child({ component: "router-link" }),
      httpPort,
      address: advertisedAddress(this.config.advertiseHost, this.config.host),
      addressSetting: this.config.advertiseHost ? "LLMLB_ADVERTISE_HOST" : "LLMLB_HOST",
      version: NODE_VERSION,
      intervalMs: this.config.heartbeatIntervalSeconds * 1000,
      mode: this.config.routerMode,
      synced,
    });
    this.push.start();
  }

  get pushLink(): PushLink | undefined {
    return this.push;
  }

  async close(): Promise<void> {
    this.controller.abort();
    await this.push?.close();
  }

  private routers(): RouterClient[] {
    return this.config.routerUrls.map((url) => new RouterClient(url, this.config.routerApiKey));
  }

  private async runSync(): Promise<void> {
    try {
      await this.sync.run(this.controller.signal);
    } catch (err) {
      if (!this.controller.signal.aborted) this.logger.warn({ err }, "router sync failed");
    }
  }
}
