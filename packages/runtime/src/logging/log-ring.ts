import { Writable } from "node:stream";

/** One log line as an llmlb router reads it (`GET /v0/logs`, `/api/logs`). */
export interface LogEntry {
  timestamp: string;
  level: string;
  /** The component that logged it (engine, http, router-link, …). */
  target: string;
  message: string;
  fields: Record<string, unknown>;
}

/**
 * The last `capacity` log lines in memory, for routers that ask a node for its logs. It is fed
 * the logger's finished JSON lines, so everything in it has already been redacted.
 */
export class LogRing {
  private readonly entries: LogEntry[] = [];
  /** Where the logger writes; every complete JSON line becomes an entry. */
  readonly stream: Writable;

  constructor(readonly capacity = 1000) {
    let partial = "";
    this.stream = new Writable({
      write: (chunk: Buffer | string, _encoding, done) => {
        const lines = (partial + chunk.toString()).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) if (line) this.push(line);
        done();
      },
    });
  }

  /** The newest `count` entries, oldest first. */
  tail(count: number): LogEntry[] {
    return count <= 0 ? [] : this.entries.slice(-count);
  }

  private push(line: string): void {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const { time, level, msg, component, listener, ...fields } = record;
    this.entries.push({
      timestamp: typeof time === "string" ? time : new Date().toISOString(),
      level: typeof level === "string" ? level : "info",
      target: typeof component === "string" ? component : typeof listener === "string" ? listener : "llmlb_node",
      message: typeof msg === "string" ? msg : "",
      fields,
    });
    if (this.entries.length > this.capacity) this.entries.splice(0, this.entries.length - this.capacity);
  }
}
