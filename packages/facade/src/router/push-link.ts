import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import os from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "@llmlb/runtime";
import type { GetHostStatusResponse } from "@llmlb/runtime/gen/llmlb/node/v1/inference_pb";
import { ModelState, type Model } from "@llmlb/runtime/gen/llmlb/node/v1/model_pb";
import type { NodeClients } from "../clients.js";
import { allModels, gpuSummary, hostStatus, modelFacts } from "./node-facts.js";
import { RouterClient, routerReason } from "./router-client.js";
import type { RouterSync } from "./router-sync.js";

export interface PushLinkOptions {
  router: RouterClient;
  clients: NodeClients;
  sync: RouterSync;
  logger: Logger;
  /** The HTTP port this node serves on; the router is told port − 1 (it adds one). */
  httpPort: number;
  /** Address the router reaches this node at: an IP, or a host name resolved once at start. */
  address: string;
  /** The setting the address came from, named when it cannot be used. */
  addressSetting?: string;
  version: string;
  intervalMs: number;
  /** push: keep trying to register; auto: a router without /v0/nodes (pull era) ends the link. */
  mode: "push" | "auto";
  /** Longest wait between failed attempts (default 60 s). */
  maxBackoffMs?: number;
  /** Settles when the start-up sync is done (LLMLB_PREFETCH): the first registration waits for it. */
  synced?: Promise<unknown> | undefined;
}

export type PushLinkStatus = "starting" | "waiting-for-model" | "registered" | "refused" | "polled" | "retrying" | "stopped";

const isReady = (m: Model | undefined) => m?.state === ModelState.READY || m?.state === ModelState.LOADED;

const SUPPORTED_RUNTIMES = ["llama_cpp"];

/**
 * The push-era router link (llmlb ≤ 2.x): register (`POST /v0/nodes`), keep the node token,
 * heartbeat (`POST /v0/health`) every interval; a 401 or 404 heartbeat registers again; failures
 * back off exponentially. It only ever talks to the router: serving never waits on it.
 */
export class PushLink {
  private readonly controller = new AbortController();
  private nodeId: string | undefined;
  private nodeToken: string | undefined;
  private failures = 0;
  private refusedLogged = false;
  private waitLogged = false;
  private current: PushLinkStatus = "starting";
  private loop: Promise<void> | undefined;
  private address: string | undefined;

  constructor(private readonly options: PushLinkOptions) {}

  get status(): PushLinkStatus {
    return this.current;
  }

  get registeredAs(): string | undefined {
    return this.nodeId;
  }

  start(): void {
    this.loop ??= this.run().catch((err: unknown) => {
      if (!this.controller.signal.aborted) this.options.logger.error({ err }, "router link stopped");
    });
  }

  async close(): Promise<void> {
    this.controller.abort();
    await this.loop;
    this.current = "stopped";
  }

  private async run(): Promise<void> {
    const { signal } = this.controller;
    this.address = await this.resolvedAddress();
    if (this.address === undefined) {
      this.current = "stopped";
      return;
    }
    // The router reads /v1/models only when a node registers: register with what the sync brings.
    await this.options.synced;
    while (!signal.aborted) {
      let wait: number;
      try {
        if (this.nodeToken === undefined) await this.untilModelReady();
        if (signal.aborted) return;
        wait = this.nodeToken === undefined ? await this.register() : await this.heartbeat();
      } catch (err) {
        if (signal.aborted) return;
        this.options.logger.warn({ router: this.options.router.base, err }, "router unreachable");
        wait = this.retryWait();
      }
      if (wait < 0) return;
      try {
        await sleep(wait, undefined, { signal });
      } catch {
        return;
      }
    }
  }

  /** The router's registration takes an IP address (a host name gets 422): a name is resolved, IPv4 first. */
  private async resolvedAddress(): Promise<string | undefined> {
    const { address, logger } = this.options;
    if (isIP(address)) return address;
    const setting = this.options.addressSetting ?? "LLMLB_ADVERTISE_HOST";
    try {
      const found = await lookup(address, { all: true });
      const ip = (found.find((a) => a.family === 4) ?? found[0])?.address;
      if (ip === undefined) throw new Error("no address");
      logger.info({ host: address, address: ip, setting }, "advertising the router the IP address this host name resolves to");
      return ip;
    } catch (err) {
      logger.error({ host: address, setting, err }, `${setting}=${address} does not resolve to an IP address, and the router takes only an IP: set ${setting} to this node's IP. Not registering with the router`);
      return undefined;
    }
  }

  /**
   * A push-era router refuses a node whose /v1/models lists nothing (500 "Node reported no executable
   * models"): until a model is on disk, say why once and wait for one, watching the catalog.
   */
  private async untilModelReady(): Promise<void> {
    const { clients, logger, router } = this.options;
    const { signal } = this.controller;
    if ((await allModels(clients)).some(isReady)) return;
    this.current = "waiting-for-model";
    if (!this.waitLogged) {
      const fields = {
        router: router.base,
        fix: "pull a model (llmlb-node pull <id>, or POST /v0/models/<id>/pull), or set LLMLB_PREFETCH=true to fetch the models the router lists",
        ...(this.options.mode === "auto" ? { note: "a pull-era router (llmlb ≥ 3.0) needs no registration: it polls this node" } : {}),
      };
      const message = "not registering with the router yet: a push-era llmlb router refuses a node with no model on disk; registering as soon as one is ready";
      if (this.options.mode === "push") logger.warn(fields, message);
      else logger.info(fields, message);
      this.waitLogged = true;
    }
    // include_initial covers a model that became ready between the check above and the watch.
    for await (const change of clients.catalog.watchModels({ modelIds: [], includeInitial: true }, { signal })) {
      if (!change.removed && isReady(change.model)) return;
    }
  }

  /** Registers; returns how long to wait before the next step (−1: stop). */
  private async register(): Promise<number> {
    const { router, logger } = this.options;
    // The router ranks nodes by the GPU it registers with: worth starting the runner for.
    const host = await hostStatus(this.options.clients, { probeGpu: true });
    const answer = await router.post("/v0/nodes", this.registration(host), {}, this.controller.signal);
    const body = answer.body as { node_id?: unknown; node_token?: unknown; status?: unknown } | undefined;
    if ((answer.status === 200 || answer.status === 201) && typeof body?.node_id === "string" && typeof body.node_token === "string") {
      this.nodeId = body.node_id;
      this.nodeToken = body.node_token;
      this.failures = 0;
      this.refusedLogged = false;
      this.current = "registered";
      logger.info({ router: router.base, nodeId: this.nodeId, status: body.status }, "registered with the router");
      // The first heartbeat goes out right away so the router sees the node's load at once.
      return 0;
    }
    if (answer.status === 403) {
      if (!this.refusedLogged) logger.warn({ router: router.base, reason: routerReason(answer) }, "the router refused to register this node");
      this.refusedLogged = true;
      this.current = "refused";
      return this.backoff();
    }
    if ((answer.status === 404 || answer.status === 405) && this.options.mode === "auto") {
      this.current = "polled";
      logger.info({ router: router.base }, "the router takes no registrations (llmlb ≥ 3.0); waiting to be polled at /api/system and /api/health");
      return -1;
    }
    this.current = "retrying";
    logger.warn({ router: router.base, status: answer.status, reason: routerReason(answer) }, "registration with the router failed");
    return this.backoff();
  }

  private async heartbeat(): Promise<number> {
    const { router, logger, clients, sync } = this.options;
    const [host, facts] = await Promise.all([hostStatus(clients, { probeGpu: false }), modelFacts(clients)]);
    const gpu = gpuSummary(host);
    const hasGpu = gpu.deviceCount > 0;
    const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
    const answer = await router.post(
      "/v0/health",
      {
        node_id: this.nodeId,
        cpu_usage: round1(host.cpuUsagePercent),
        memory_usage: round1(host.memoryUsagePercent),
        active_requests: host.activeRequests,
        // llama.cpp reports memory, not utilisation or temperature.
        gpu_usage: null,
        gpu_memory_usage: hasGpu && gpu.totalBytes > 0 ? round1((gpu.usedBytes / gpu.totalBytes) * 100) : null,
        gpu_memory_total_mb: hasGpu ? mb(gpu.totalBytes) : null,
        gpu_memory_used_mb: hasGpu ? mb(gpu.usedBytes) : null,
        gpu_temperature: null,
        gpu_model_name: host.gpuDevices[0]?.name ?? null,
        gpu_compute_capability: null,
        gpu_capability_score: hasGpu ? gpu.capabilityScore : null,
        average_response_time_ms: null,
        loaded_models: facts.loadedChat,
        loaded_embedding_models: facts.loadedEmbedding,
        supported_runtimes: SUPPORTED_RUNTIMES,
        initializing: facts.initializing,
        ready_models: facts.readyModels,
        sync_state: sync.state,
        sync_progress: sync.progress(facts),
      },
      { "x-node-token": this.nodeToken! },
      this.controller.signal,
    );
    if (answer.status >= 200 && answer.status < 300) {
      this.failures = 0;
      return this.options.intervalMs;
    }
    if (answer.status === 401 || answer.status === 404) {
      logger.info({ router: router.base, status: answer.status, reason: routerReason(answer) }, "the router no longer knows this node; registering again");
      this.nodeToken = undefined;
      this.current = "retrying";
      return 0;
    }
    logger.warn({ router: router.base, status: answer.status, reason: routerReason(answer) }, "heartbeat failed");
    return this.retryWait();
  }

  private registration(host: GetHostStatusResponse) {
    const byName = new Map<string, { model: string; count: number; memory: number }>();
    for (const device of host.gpuDevices) {
      const entry = byName.get(device.name) ?? { model: device.name, count: 0, memory: Number(device.totalMemoryBytes) };
      entry.count += 1;
      byName.set(device.name, entry);
    }
    const devices = [...byName.values()];
    return {
      machine_name: os.hostname(),
      ip_address: this.address,
      runtime_version: this.options.version,
      runtime_port: this.options.httpPort - 1,
      gpu_available: devices.length > 0,
      gpu_devices: devices,
      gpu_count: host.gpuDevices.length,
      gpu_model: devices[0]?.model ?? null,
      supported_runtimes: SUPPORTED_RUNTIMES,
    };
  }

  /**
   * A registered node retries its heartbeat at least every interval: the router marks a node
   * offline after 60 s without one, so backing off further would take a node that is fine offline
   * for every blip of the router. Registration backs off in full.
   */
  private retryWait(): number {
    const wait = this.backoff();
    return this.nodeToken === undefined ? wait : Math.min(wait, this.options.intervalMs);
  }

  /** 1 s, 2 s, 4 s … up to the maximum, growing with consecutive failures. */
  private backoff(): number {
    this.failures += 1;
    return Math.min(this.options.maxBackoffMs ?? 60_000, 1000 * 2 ** (this.failures - 1));
  }
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/** The address to advertise: the configured one, the bind host, or the first non-loopback IPv4 for a wildcard bind. */
export function advertisedAddress(configured: string, bindHost: string): string {
  if (configured) return configured;
  if (bindHost !== "0.0.0.0" && bindHost !== "::" && bindHost !== "") return bindHost;
  for (const addresses of Object.values(os.networkInterfaces())) {
    const v4 = addresses?.find((a) => a.family === "IPv4" && !a.internal);
    if (v4) return v4.address;
  }
  return "127.0.0.1";
}
