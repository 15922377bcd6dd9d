import type { Logger } from "../logging/index.js";
import type { KvNamespace } from "../state/shared-kv.js";

/** One node as the fleet sees it. */
export interface NodeRecord {
  /** Base URL other nodes reach its HTTP port at (LLMLB_ADVERTISE_URL). */
  url: string;
  /** Ids of the models it holds READY. */
  ready: string[];
  /** Epoch milliseconds of its last heartbeat. */
  heartbeatAt: number;
}

export interface NodeDirectoryOptions {
  kv: KvNamespace<NodeRecord>;
  self: string;
  readyModels: () => Promise<string[]>;
  /** A node that stops beating disappears after this long. */
  ttlMs: number;
  heartbeatMs: number;
  logger: Logger;
}

/**
 * The fleet's node directory in the shared store: each node writes its own record with a TTL and
 * refreshes it on a heartbeat (and at once when its READY models change); a node that dies
 * disappears when its record expires.
 */
export class NodeDirectory {
  private timer: NodeJS.Timeout | undefined;
  private beats: Promise<void> = Promise.resolve();
  private closed = false;
  private listed = false;
  private readonly onListed: Array<() => void> = [];

  constructor(private readonly options: NodeDirectoryOptions) {}

  /** Calls `listener` once this node's record is in the directory for the first time (the store answered). */
  whenListed(listener: () => void): void {
    if (this.listed) listener();
    else this.onListed.push(listener);
  }

  start(): void {
    this.changed();
    this.timer = setInterval(() => this.changed(), this.options.heartbeatMs);
    this.timer.unref();
  }

  /** Publishes this node's record now (READY models changed). */
  changed(): void {
    void this.publish();
  }

  /** Publishes this node's record (one write at a time); resolves once what it holds now is in the directory. */
  publish(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.beats = this.beats.then(() => this.beat());
    return this.beats;
  }

  /** Every live node but this one. */
  async peers(): Promise<NodeRecord[]> {
    const { entries } = await this.options.kv.entries();
    return entries.map(([, record]) => record).filter((r) => isRecord(r) && r.url !== this.options.self);
  }

  /** Live peers holding the model READY. */
  async holders(modelId: string): Promise<string[]> {
    return (await this.peers()).filter((r) => r.ready.includes(modelId)).map((r) => r.url);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.beats;
    await this.options.kv.delete(this.options.self);
  }

  private async beat(): Promise<void> {
    try {
      const ready = await this.options.readyModels();
      await this.options.kv.set(this.options.self, { url: this.options.self, ready, heartbeatAt: Date.now() }, this.options.ttlMs);
      if (!this.listed) {
        this.listed = true;
        for (const listener of this.onListed.splice(0)) listener();
      }
    } catch (err) {
      this.options.logger.debug({ err }, "node directory heartbeat failed");
    }
  }
}

function isRecord(value: unknown): value is NodeRecord {
  const r = value as Partial<NodeRecord> | null;
  return typeof r === "object" && r !== null && typeof r.url === "string" && Array.isArray(r.ready);
}
