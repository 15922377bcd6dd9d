/**
 * Request log shared by the stand-ins. One entry per HTTP request, created when the request
 * arrives and updated live (status when headers are written, byte counters while the body streams).
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export interface RequestLogEntry<H extends string = string> {
  /** Sequence number within this log (1-based, survives clearLog()). */
  readonly seq: number;
  /** ms since epoch when the request arrived. */
  readonly time: number;
  readonly method: string;
  /** Which listener answered: "hub" | "cdn" (HF), "github" | "assets" (GitHub), "router". */
  readonly host: H;
  /** Raw (still percent-encoded) path without the query string. */
  readonly path: string;
  /** Raw query string including the leading "?" (or ""). */
  readonly query: string;
  /** Request headers, names lowercased (multi-valued headers joined with ", "). */
  readonly headers: Record<string, string>;
  /** Response status once headers were written; 0 while none were (e.g. hung or still stalled before headers). */
  status: number;
  /** Total response body bytes handed to the socket (file content, error JSON, redirect text …). */
  bytesSent: number;
  /** Bytes of *file content* in bytesSent (0 for errors, redirects and HEAD). */
  fileBytes: number;
  /** First byte offset of file content served (for 200 = 0, 206 = range start). */
  rangeStart?: number;
  /** Repo / owner-repo the request was about, when known. */
  repoId?: string;
  /** File path in the repo (HF), asset name (GitHub) or model id (router), when known. */
  file?: string;
  /** True once the response finished normally. */
  completed: boolean;
  /** True if the connection closed before the response finished (client abort or injected fault). */
  aborted: boolean;
}

const entries = new WeakMap<ServerResponse, RequestLogEntry>();

/** The log entry belonging to a response (set by RequestLog.begin). */
export function entryOf(res: ServerResponse): RequestLogEntry | undefined {
  return entries.get(res);
}

export class RequestLog<H extends string = string> {
  /** Live array of entries, oldest first. */
  readonly requests: RequestLogEntry<H>[] = [];
  private seq = 0;

  begin(host: H, req: IncomingMessage, res: ServerResponse): RequestLogEntry<H> {
    const rawUrl = req.url ?? "/";
    const q = rawUrl.indexOf("?");
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined) continue;
      headers[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
    }
    const entry: RequestLogEntry<H> = {
      seq: ++this.seq,
      time: Date.now(),
      method: req.method ?? "GET",
      host,
      path: q < 0 ? rawUrl : rawUrl.slice(0, q),
      query: q < 0 ? "" : rawUrl.slice(q),
      headers,
      status: 0,
      bytesSent: 0,
      fileBytes: 0,
      completed: false,
      aborted: false,
    };
    this.requests.push(entry);
    entries.set(res, entry);
    // Every path to the wire (explicit writeHead, implicit headers from write/end) goes through writeHead.
    const origWriteHead = res.writeHead;
    res.writeHead = function patchedWriteHead(this: ServerResponse, ...args: unknown[]) {
      const r = (origWriteHead as (...a: unknown[]) => ServerResponse).apply(this, args);
      entry.status = this.statusCode;
      return r;
    } as typeof res.writeHead;
    res.on("finish", () => {
      entry.completed = true;
    });
    res.on("close", () => {
      if (!entry.completed) entry.aborted = true;
    });
    return entry;
  }

  clear(): void {
    this.requests.length = 0;
  }

  /** Entries for one host. */
  byHost(host: H): RequestLogEntry<H>[] {
    return this.requests.filter((e) => e.host === host);
  }

  /** Sum of file-content bytes served for (repoId, file) by the given hosts (all hosts by default). */
  fileBytes(repoId: string | undefined, file: string, hosts?: readonly H[]): number {
    let n = 0;
    for (const e of this.requests) {
      if (e.file !== file || e.repoId !== repoId) continue;
      if (hosts && !hosts.includes(e.host)) continue;
      n += e.fileBytes;
    }
    return n;
  }
}
