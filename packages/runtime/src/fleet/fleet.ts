import type { ModelEvents } from "../events/model-events.js";
import type { Logger } from "../logging/index.js";
import type { FleetView } from "../plugin/contract.js";
import type { KvNamespace } from "../state/shared-kv.js";
import type { StateStore } from "../state/state-store.js";
import type { LeaseBackend } from "./lease-backend.js";
import { NodeDirectory, type NodeRecord } from "./node-directory.js";

export interface FleetTuning {
  directoryTtlMs: number;
  heartbeatMs: number;
  leaseTtlMs: number;
  /** A peer that served bytes with the wrong sha256 is not asked again for this long. */
  badPeerMs: number;
  /** A peer a transfer failed from is not asked again by this node for this long. */
  failedPeerMs: number;
}

export const DEFAULT_FLEET_TUNING: FleetTuning = { directoryTtlMs: 15_000, heartbeatMs: 5_000, leaseTtlMs: 10_000, badPeerMs: 10 * 60_000, failedPeerMs: 30_000 };

/** What the resolver asks of the fleet around a download from a non-peer source. */
export interface FleetDownloads {
  /**
   * Takes the cluster's lease on downloading `id` from the hub: "held" (this node downloads),
   * the base URL of the node that holds it, or "alone" (no shared store reachable: go ahead).
   */
  claimDownload(id: string): Promise<"held" | "alone" | { holder: string }>;
  releaseDownload(id: string): Promise<void>;
  /** Whether the peer at `url` still holds the model READY or is still downloading it (holds the lease). */
  peerServes(url: string, id: string): Promise<boolean>;
  /** A peer served bytes that failed verification: skip it from now on. */
  reportBadPeer(url: string): void;
  /** A transfer from this peer failed (it died, or answered an error): this node stops following its download for a while. */
  avoidPeer(url: string): void;
  /** How long a lease outlives a holder that died (its TTL): the longest another node may have to wait to take it over. */
  readonly leaseTtlMs: number;
}

export interface FleetOptions {
  state: StateStore;
  leases: LeaseBackend;
  apiKey: string;
  events: ModelEvents;
  readyModels: () => Promise<string[]>;
  logger: Logger;
  tuning?: Partial<FleetTuning>;
}

/**
 * This node's membership of a fleet (LLMLB_STATE_URL): the node directory, the cluster's download
 * leases, and the view of both the peer source gets. Joins once the HTTP listener knows its URL.
 */
export class Fleet implements FleetDownloads {
  private readonly tuning: FleetTuning;
  private directory: NodeDirectory | undefined;
  private self: string | undefined;
  private readonly renewals = new Map<string, NodeJS.Timeout>();
  private readonly badPeers = new Map<string, number>();
  /** Peers a transfer from failed here, until when (epoch ms). */
  private readonly failedPeers = new Map<string, number>();
  private readonly offEvents: () => void;

  private readonly suspectKv: KvNamespace<{ reportedBy: string; at: number }> | undefined;

  constructor(private readonly options: FleetOptions) {
    this.tuning = { ...DEFAULT_FLEET_TUNING, ...options.tuning };
    this.suspectKv = options.state.remoteNamespace("suspect-peers");
    this.offEvents = options.events.on((event) => {
      if (event.type === "transfer-finished" || event.type === "deleted") this.directory?.changed();
    });
  }

  /** Starts advertising this node at `url` (its HTTP base URL as peers reach it). */
  join(url: string): void {
    if (this.directory) return;
    this.self = url;
    const kv = this.options.state.remoteNamespace<NodeRecord>("nodes");
    if (!kv) return;
    this.directory = new NodeDirectory({
      kv,
      self: url,
      readyModels: this.options.readyModels,
      ttlMs: this.tuning.directoryTtlMs,
      heartbeatMs: this.tuning.heartbeatMs,
      logger: this.options.logger,
    });
    // Said once the store has this node's record, not while it cannot be reached.
    this.directory.whenListed(() => this.options.logger.info({ advertise: url, store: this.options.state.name }, "joined the fleet"));
    this.directory.start();
  }

  get url(): string | undefined {
    return this.self;
  }

  get leaseTtlMs(): number {
    return this.tuning.leaseTtlMs;
  }

  /** What the peer source sees (SourceContext.fleet). */
  readonly view: FleetView = {
    holders: async (id) => {
      const holders = (await this.directory?.holders(id)) ?? [];
      if (holders.length === 0) return holders;
      const suspects = await this.suspects();
      return holders.filter((url) => !suspects.has(url));
    },
    downloader: async (id) => {
      const link = this.options.state.link;
      if (!link || !this.self) return undefined;
      const answer = await link.run(() => this.options.leases.holder(id));
      const holder = answer.ok ? answer.value : undefined;
      const failedHere = (this.failedPeers.get(holder ?? "") ?? 0) > Date.now();
      return holder && holder !== this.self && !failedHere && !(await this.suspects()).has(holder) ? holder : undefined;
    },
    headers: (): Record<string, string> => (this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
  };

  async claimDownload(id: string): Promise<"held" | "alone" | { holder: string }> {
    const link = this.options.state.link;
    const self = this.self;
    if (!link || !self) return "alone";
    const { leases } = this.options;
    const answer = await link.run(async () => ((await leases.claim(id, self, this.tuning.leaseTtlMs)) ? undefined : await leases.holder(id)));
    if (!answer.ok) return "alone";
    if (answer.value !== undefined && answer.value !== self) return { holder: answer.value };
    this.keepRenewing(id, self);
    return "held";
  }

  /** Gives the lease back, once the directory shows what this node now holds (a node arriving then finds it READY here). */
  async releaseDownload(id: string): Promise<void> {
    const timer = this.renewals.get(id);
    if (!timer) return;
    await this.directory?.publish();
    clearInterval(timer);
    this.renewals.delete(id);
    const self = this.self!;
    await this.options.state.link?.run(() => this.options.leases.release(id, self));
  }

  async peerServes(url: string, id: string): Promise<boolean> {
    const link = this.options.state.link;
    if (!link?.reachable) return true; // cannot tell: keep following
    const lease = await link.run(() => this.options.leases.holder(id));
    if (lease.ok && lease.value === url) return true;
    return ((await this.directory?.holders(id)) ?? []).includes(url);
  }

  /** Not followed again for a while (a peer that since became READY is still asked for its copy). */
  avoidPeer(url: string): void {
    this.failedPeers.set(url, Date.now() + this.tuning.failedPeerMs);
  }

  /** Skipped by every node of the fleet (the report is shared) until badPeerMs passes. */
  reportBadPeer(url: string): void {
    this.badPeers.set(url, Date.now() + this.tuning.badPeerMs);
    this.options.logger.warn({ peer: url }, "a peer served bytes that failed verification; the fleet skips it from now on");
    void this.suspectKv?.set(url, { reportedBy: this.self ?? "", at: Date.now() }, this.tuning.badPeerMs);
  }

  /** Peers this node or another one found serving bad bytes. */
  private async suspects(): Promise<Set<string>> {
    const now = Date.now();
    const out = new Set([...this.badPeers].filter(([, until]) => until > now).map(([url]) => url));
    for (const [url] of (await this.suspectKv?.entries())?.entries ?? []) out.add(url);
    return out;
  }

  async close(): Promise<void> {
    this.offEvents();
    await Promise.allSettled([...this.renewals.keys()].map((id) => this.releaseDownload(id)));
    await this.directory?.close().catch(() => undefined);
    await this.options.leases.close().catch(() => undefined);
  }

  private keepRenewing(id: string, self: string): void {
    if (this.renewals.has(id)) return;
    const timer = setInterval(() => {
      void this.options.state.link?.run(() => this.options.leases.claim(id, self, this.tuning.leaseTtlMs));
    }, Math.floor(this.tuning.leaseTtlMs / 3));
    timer.unref();
    this.renewals.set(id, timer);
  }
}
