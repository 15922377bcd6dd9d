/**
 * Upstream llmlb router / peer stand-in: serves model blobs it offers.
 *   GET  /v0/models              → { models: [{ id, size_bytes, sha256 }] }
 *   GET|HEAD /v0/models/blob/:id → the file, with Range (206/416), If-Range, ETag = quoted sha256,
 *                                  Content-Length, Accept-Ranges. The id is one percent-encoded
 *                                  segment ("org%2Frepo%2Ffile.gguf"); unencoded slashes are accepted too.
 * Errors are OpenAI-style JSON: {"error": {"message", "type", "param": null, "code"}}.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { type FileBody, type DiskFile, sendBlob, toBlob } from "./body.js";
import { type FaultControls, faultControls, Faults } from "./faults.js";
import { type DownMode, Listener } from "./listener.js";
import { RequestLog, type RequestLogEntry } from "./request-log.js";
import { bearerToken, decodeSegments, sendJson, statusText } from "./respond.js";

export type RouterHost = "router";

export interface RouterStandinOptions {
  /** When set, every /v0 request needs `Authorization: Bearer <apiKey>` (else 401). */
  apiKey?: string;
}

export interface RouterModelInfo {
  id: string;
  size_bytes: number;
  sha256: string;
}

export interface RouterStandin extends FaultControls {
  readonly url: string;
  readonly requests: RequestLogEntry<RouterHost>[];
  clearLog(): void;
  /** File-content bytes of this model sent so far. */
  bytesServed(id: string): number;
  /** Offers a model: bytes, a disk path (streamed; hashed once), or {path, sha256} (not read at registration). */
  addModel(id: string, src: Uint8Array | string | DiskFile): Promise<RouterModelInfo>;
  removeModel(id: string): void;
  setApiKey(key: string | undefined): void;
  down(opts?: { mode?: DownMode }): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startRouterStandin(options: RouterStandinOptions = {}): Promise<RouterStandin> {
  const log = new RequestLog<RouterHost>();
  const faults = new Faults();
  const models = new Map<string, { blob: FileBody; addedAt: Date }>();
  let apiKey = options.apiKey;

  const err = (req: IncomingMessage, res: ServerResponse, status: number, message: string, type: string, code: string | null, headers = {}) =>
    sendJson(req, res, status, { error: { message, type, param: null, code } }, headers);

  const listener = new Listener<RouterHost>("router", log, async (req, res, entry) => {
    let segs: string[];
    try {
      segs = decodeSegments(new URL(req.url ?? "/", listener.url).pathname);
    } catch {
      return err(req, res, 400, "malformed URL", "invalid_request_error", null);
    }
    const isBlob = segs[0] === "v0" && segs[1] === "models" && segs[2] === "blob" && segs.length >= 4;
    const id = isBlob ? segs.slice(3).join("/") : undefined;
    if (id !== undefined) entry.file = id;
    const f = faults.takeRequestFault({ host: "router", path: id });
    if (f) {
      if (f.kind === "rateLimit") {
        return err(req, res, 429, "rate limited (stand-in)", "rate_limit_error", "rate_limit_exceeded", { "Retry-After": String(f.resetSeconds) });
      }
      return err(req, res, f.status, statusText(f.status), f.status >= 500 ? "server_error" : "invalid_request_error", null);
    }
    if (apiKey !== undefined && bearerToken(req) !== apiKey) {
      return err(req, res, 401, "Invalid API key", "authentication_error", "invalid_api_key", { "WWW-Authenticate": 'Bearer realm="llmlb"' });
    }
    const method = req.method ?? "GET";
    if (segs.length === 2 && segs[0] === "v0" && segs[1] === "models") {
      if (method !== "GET" && method !== "HEAD") return err(req, res, 405, "method not allowed", "invalid_request_error", null);
      return sendJson(req, res, 200, {
        models: [...models].map(([mid, m]) => ({ id: mid, size_bytes: m.blob.size, sha256: m.blob.sha256 })),
      });
    }
    if (id !== undefined) {
      if (method !== "GET" && method !== "HEAD") return err(req, res, 405, "method not allowed", "invalid_request_error", null);
      const m = models.get(id);
      if (!m) return err(req, res, 404, `model not found: ${id}`, "not_found_error", "model_not_found");
      return sendBlob(req, res, m.blob, {
        etag: `"${m.blob.sha256}"`,
        lastModified: m.addedAt,
        contentType: "application/octet-stream",
        faults,
        target: { host: "router", path: id },
      });
    }
    return err(req, res, 404, "not found", "not_found_error", null);
  });
  await listener.listen();

  return {
    ...faultControls(faults),
    get url() {
      return listener.url;
    },
    requests: log.requests,
    clearLog: () => log.clear(),
    bytesServed: (id) => log.fileBytes(undefined, id),
    async addModel(id, src) {
      const s = typeof src === "string" ? { path: src } : src;
      const blob = await toBlob(s, false);
      models.set(id, { blob, addedAt: new Date() });
      return { id, size_bytes: blob.size, sha256: blob.sha256 };
    },
    removeModel(id) {
      models.delete(id);
    },
    setApiKey(key) {
      apiKey = key;
    },
    down: (opts = {}) => listener.down(opts.mode ?? "refused"),
    up: () => listener.up(),
    close: () => listener.close(),
  };
}
