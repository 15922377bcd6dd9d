/**
 * llmlb router stand-in (../shared/reference/llmlb-router.md), also usable as a peer node.
 *
 * Model routes (what a node reads from a router):
 *   GET  /v0/models              → peer form { models: [{ id, size_bytes, sha256 }] }, or with
 *                                  `realRouter` the router's bare array [{ name, size, description, …,
 *                                  repo, filename }], name = the repo lower-cased (see addModel)
 *   GET|HEAD /v0/models/blob/:id → the file. Peer form: Range (206/416), If-Range, ETag = quoted sha256.
 *                                  `realRouter`: 200 only, whole file, no Range, no ETag,
 *                                  Content-Disposition: attachment. The id is one percent-encoded segment.
 *   GET  /v0/models/registry/:name/manifest.json → the manifest set with setManifest (404 otherwise)
 *   GET  /api/models, /api/models/registry/:name/manifest.json, /api/models/blob/:id → the same,
 *        always behind the API key (newer routers).
 * Push era (what a node sends):
 *   POST /v0/nodes   → registration: payload checked field by field (ip_address must be an IP);
 *                      403 without a GPU unless `acceptCpuNodes`; GET http://ip:(runtime_port+1)/v1/models
 *                      before answering (500 when that fails or lists no model, as the real router's
 *                      "Node reported no executable models"); 201 new / 200 same machine_name+port,
 *                      new token each time. A real router keeps a new node pending until an admin
 *                      approves it; the stand-in approves at once: online when ready_models says
 *                      ready >= total, else registering.
 *   POST /v0/health  → heartbeat: 401 without the key or X-Node-Token, 404 for an unknown node_id,
 *                      fields and types checked (problems recorded, 400); ready_models is a (u8, u8)
 *                      pair and a registering node goes online once ready >= total.
 *   POST /v1/*       → passed to the first online node unchanged, the answer streamed back byte for
 *                      byte; 503 when no node is online.
 * Pull era (what a router does to a node): pollNode() below.
 * Errors are OpenAI-style JSON: {"error": {"message", "type", "param": null, "code"}}; with `realRouter`,
 * authentication failures are plain text as the real router's auth layer sends them ("Missing
 * X-API-Key header or Authorization header", "Invalid API key", "Missing X-Node-Token header",
 * "Invalid node token"), and a heartbeat that does not match the contract gets 422 in plain text.
 */
import { randomUUID } from "node:crypto";
import { isIP } from "node:net";
import { request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { type FileBody, type DiskFile, sendBlob, toBlob } from "./body.js";
import { type FaultControls, faultControls, Faults } from "./faults.js";
import { type DownMode, Listener } from "./listener.js";
import { RequestLog, type RequestLogEntry } from "./request-log.js";
import { bearerToken, decodeSegments, send, sendJson, statusText } from "./respond.js";

export type RouterHost = "router";

export interface RouterStandinOptions {
  /** When set, every request needs `Authorization: Bearer <apiKey>` (else 401). /api/* always needs it. */
  apiKey?: string;
  /** Model routes as a real llmlb router answers them (bare-array list, whole-file blobs). */
  realRouter?: boolean;
  /** Serve models only under /api/models (newer routers): /v0/models… answers 404. */
  apiOnly?: boolean;
  /** Register nodes without a GPU (a real router answers 403), so heartbeats can be tested on CPU machines. */
  acceptCpuNodes?: boolean;
  /** false: blobs carry a short ETag that is not their sha256 (a router that proves no digest). Default true. */
  digests?: boolean;
}

export interface RouterModelInfo {
  id: string;
  size_bytes: number;
  sha256: string;
}

/** A node's state in the router once approved: registering (models still coming) or online (routed to). */
export type NodeStatus = "registering" | "online";

export interface RegisteredNode {
  nodeId: string;
  status: NodeStatus;
  token: string;
  machineName: string;
  ipAddress: string;
  runtimePort: number;
  /** What GET /v1/models of the node answered at registration. */
  modelIds: string[];
  /** The last [ready, total] the node reported (registration's /v1/models, then heartbeats). */
  readyModels: [number, number] | null;
  registration: Record<string, unknown>;
}

export interface RegistrationRecord {
  status: number;
  body: unknown;
  payload: Record<string, unknown>;
  /** Field problems found in the payload (empty when it matched the contract). */
  problems: string[];
}

export interface HeartbeatRecord {
  status: number;
  payload: Record<string, unknown>;
  problems: string[];
}

export interface Manifest {
  format: string;
  quantization?: string;
  files: Array<{ name: string; runtimes?: string[]; url?: string }>;
}

export interface RouterStandin extends FaultControls {
  readonly url: string;
  readonly requests: RequestLogEntry<RouterHost>[];
  readonly registrations: RegistrationRecord[];
  readonly heartbeats: HeartbeatRecord[];
  readonly nodes: ReadonlyMap<string, RegisteredNode>;
  clearLog(): void;
  /** File-content bytes of this model sent so far. */
  bytesServed(id: string): number;
  /**
   * Offers a model: bytes, a disk path (streamed; hashed once), or {path, sha256} (not read at registration).
   * With `realRouter` and a Hugging Face repo, the model is named as the real router names it (the
   * repo, lower-cased: generate_model_id) and listed with its repo and file; the returned id is that name.
   */
  addModel(id: string, src: Uint8Array | string | DiskFile, hf?: { repo: string; filename: string }): Promise<RouterModelInfo>;
  removeModel(id: string): void;
  /** Serves /v0/models/registry/:name/manifest.json (and the /api variant). */
  setManifest(name: string, manifest: Manifest): void;
  setApiKey(key: string | undefined): void;
  setAcceptCpuNodes(accept: boolean): void;
  /** Drops a node, as a restarted router would: its next heartbeat gets 404. */
  forgetNode(nodeId: string): void;
  down(opts?: { mode?: DownMode }): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

const MAX_BODY = 1 << 20;

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > MAX_BODY) throw new Error("body too large");
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

type Check = (v: unknown) => boolean;
const isString: Check = (v) => typeof v === "string";
const isNumber: Check = (v) => typeof v === "number" && Number.isFinite(v);
const isInt: Check = (v) => Number.isInteger(v);
const isBool: Check = (v) => typeof v === "boolean";
const isPercent: Check = (v) => isNumber(v) && (v as number) >= 0 && (v as number) <= 100;
const nullable = (c: Check): Check => (v) => v === null || c(v);
const listOf = (c: Check): Check => (v) => Array.isArray(v) && v.every(c);
const isGpuDevice: Check = (v) => {
  const d = v as { model?: unknown; count?: unknown; memory?: unknown } | null;
  return d !== null && typeof d === "object" && isString(d.model) && isInt(d.count) && isInt(d.memory);
};
const isU8: Check = (v) => isInt(v) && (v as number) >= 0 && (v as number) <= 255;
const isReadyModels: Check = (v) => Array.isArray(v) && v.length === 2 && v.every(isU8);
const isIpAddress: Check = (v) => isString(v) && isIP(v as string) !== 0;
const isSyncProgress: Check = (v) => {
  const p = v as Record<string, unknown> | null;
  return p !== null && typeof p === "object" && isString(p.model_id) && isString(p.file) && isInt(p.downloaded_bytes) && isInt(p.total_bytes);
};

/** The registration contract: required fields and their types. */
const REGISTRATION: Record<string, Check> = {
  machine_name: isString,
  ip_address: isIpAddress,
  runtime_version: isString,
  runtime_port: isInt,
  gpu_available: isBool,
  gpu_devices: listOf(isGpuDevice),
  gpu_count: isInt,
  gpu_model: nullable(isString),
  supported_runtimes: listOf(isString),
};

/** The heartbeat contract: required fields, then optional ones (null allowed). */
const HEARTBEAT_REQUIRED: Record<string, Check> = {
  node_id: isString,
  cpu_usage: isPercent,
  memory_usage: isPercent,
  active_requests: isInt,
};
const HEARTBEAT_OPTIONAL: Record<string, Check> = {
  gpu_usage: isPercent,
  gpu_memory_usage: isPercent,
  gpu_memory_total_mb: isInt,
  gpu_memory_used_mb: isInt,
  gpu_temperature: isNumber,
  gpu_model_name: isString,
  gpu_compute_capability: isString,
  gpu_capability_score: isNumber,
  average_response_time_ms: isNumber,
  loaded_models: listOf(isString),
  loaded_embedding_models: listOf(isString),
  supported_runtimes: listOf(isString),
  initializing: isBool,
  ready_models: isReadyModels,
  sync_state: (v) => v === "idle" || v === "running" || v === "success" || v === "failed",
  sync_progress: isSyncProgress,
};

function problemsOf(payload: Record<string, unknown>, required: Record<string, Check>, optional: Record<string, Check> = {}): string[] {
  const problems: string[] = [];
  for (const [field, check] of Object.entries(required)) {
    if (!(field in payload)) problems.push(`${field} is missing`);
    else if (!check(payload[field])) problems.push(`${field} is ${JSON.stringify(payload[field])}`);
  }
  for (const [field, check] of Object.entries(optional)) {
    if (!(field in payload)) problems.push(`${field} is missing`);
    else if (payload[field] !== null && !check(payload[field])) problems.push(`${field} is ${JSON.stringify(payload[field])}`);
  }
  return problems;
}

export async function startRouterStandin(options: RouterStandinOptions = {}): Promise<RouterStandin> {
  const log = new RequestLog<RouterHost>();
  const faults = new Faults();
  const models = new Map<string, { blob: FileBody; addedAt: Date; hf?: { repo: string; filename: string } }>();
  const manifests = new Map<string, Manifest>();
  const nodes = new Map<string, RegisteredNode>();
  const registrations: RegistrationRecord[] = [];
  const heartbeats: HeartbeatRecord[] = [];
  let apiKey = options.apiKey;
  let acceptCpuNodes = options.acceptCpuNodes === true;
  const realRouter = options.realRouter === true;

  const err = (req: IncomingMessage, res: ServerResponse, status: number, message: string, type: string, code: string | null, headers = {}) =>
    sendJson(req, res, status, { error: { message, type, param: null, code } }, headers);

  const modelList = () =>
    realRouter
      ? [...models].map(([name, m]) => ({
          name,
          size: m.blob.size,
          description: `${name} (stand-in)`,
          required_memory: m.blob.size * 2,
          tags: ["gguf"],
          capabilities: ["TextGeneration"],
          source: "hf_gguf",
          status: "ready",
          ...(m.hf ? { repo: m.hf.repo, filename: m.hf.filename } : {}),
        }))
      : { models: [...models].map(([mid, m]) => ({ id: mid, size_bytes: m.blob.size, sha256: m.blob.sha256 })) };

  async function register(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const payload = (await readJson(req)) as Record<string, unknown>;
    const problems = problemsOf(payload, REGISTRATION);
    const record: RegistrationRecord = { status: 0, body: undefined, payload, problems };
    registrations.push(record);
    const answer = (status: number, body: unknown) => {
      record.status = status;
      record.body = body;
      sendJson(req, res, status, body);
    };
    if (problems.length) return answer(400, { error: `invalid registration: ${problems.join("; ")}` });
    const devices = payload.gpu_devices as Array<{ model: string; count: number }>;
    const gpuOk = payload.gpu_available === true && devices.length > 0 && devices.every((d) => d.count > 0 && d.model.trim() !== "");
    if (!gpuOk && !acceptCpuNodes) {
      return answer(403, { error: "GPU is required: gpu_available is false or gpu_devices is empty (CPU-only nodes are not supported)" });
    }
    let modelIds: string[];
    let readyModels: [number, number] | null;
    try {
      const r = await fetch(`http://${String(payload.ip_address)}:${Number(payload.runtime_port) + 1}/v1/models`, { signal: AbortSignal.timeout(5000) });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const body = (await r.json()) as { data: Array<{ id: string }>; ready_models?: unknown };
      modelIds = [...new Set(body.data.map((m) => m.id.trim()).filter(Boolean))];
      const pair = body.ready_models;
      // The real router casts each number `as u8` (so 256 wraps to 0) and falls back to [listed, listed].
      readyModels = Array.isArray(pair) && pair.length === 2 ? [Number(pair[0]) % 256, Number(pair[1]) % 256] : modelIds.length ? [modelIds.length, modelIds.length] : null;
    } catch (e) {
      return answer(500, { error: `node API unreachable at /v1/models: ${(e as Error).message}` });
    }
    // The real router refuses a node that lists nothing it could route to, with its generic 500 body.
    if (modelIds.length === 0) return answer(500, { error: "Internal server error" });
    const existing = [...nodes.values()].find((n) => n.machineName === payload.machine_name && n.runtimePort === payload.runtime_port);
    const node: RegisteredNode = {
      nodeId: existing?.nodeId ?? randomUUID(),
      status: readyModels !== null && readyModels[0] >= readyModels[1] ? "online" : "registering",
      token: `nt_${randomUUID()}`,
      machineName: String(payload.machine_name),
      ipAddress: String(payload.ip_address),
      runtimePort: Number(payload.runtime_port),
      modelIds,
      readyModels,
      registration: payload,
    };
    nodes.set(node.nodeId, node);
    answer(existing ? 200 : 201, {
      node_id: node.nodeId,
      status: existing ? "updated" : "registered",
      node_api_port: node.runtimePort + 1,
      node_token: node.token,
    });
  }

  async function heartbeat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const payload = (await readJson(req)) as Record<string, unknown>;
    const problems = problemsOf(payload, HEARTBEAT_REQUIRED, HEARTBEAT_OPTIONAL);
    const record: HeartbeatRecord = { status: 0, payload, problems };
    const answer = (status: number, body: unknown) => {
      record.status = status;
      heartbeats.push(record);
      sendJson(req, res, status, body);
    };
    const text = (status: number, message: string) => {
      record.status = status;
      heartbeats.push(record);
      send(req, res, status, { "content-type": "text/plain; charset=utf-8" }, message);
    };
    const node = typeof payload.node_id === "string" ? nodes.get(payload.node_id) : undefined;
    const token = req.headers["x-node-token"];
    if (typeof token !== "string" || token === "") return realRouter ? text(401, "Missing X-Node-Token header") : answer(401, { error: "missing X-Node-Token" });
    if (!node) return answer(404, { error: `node ${String(payload.node_id)} is not registered` });
    if (token !== node.token) return realRouter ? text(401, "Invalid node token") : answer(401, { error: "invalid X-Node-Token" });
    if (problems.length) {
      return realRouter ? text(422, `Failed to deserialize the JSON body into the target type: ${problems[0]}`) : answer(400, { error: `invalid heartbeat: ${problems.join("; ")}` });
    }
    if (Array.isArray(payload.ready_models)) node.readyModels = payload.ready_models as [number, number];
    if (node.status === "registering" && node.readyModels !== null && node.readyModels[0] >= node.readyModels[1]) node.status = "online";
    answer(200, { status: "ok" });
  }

  /** Passes an OpenAI request to the first online node, unchanged, and streams the answer back. */
  async function proxy(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const node = [...nodes.values()].find((n) => n.status === "online");
    if (!node) return err(req, res, 503, "No available nodes", "server_error", "no_nodes");
    const upstream = httpRequest({
      host: node.ipAddress,
      port: node.runtimePort + 1,
      path,
      method: req.method,
      headers: { "content-type": req.headers["content-type"] ?? "application/json" },
    });
    await new Promise<void>((resolve, reject) => {
      upstream.on("response", (up) => {
        res.writeHead(up.statusCode ?? 502, { "content-type": up.headers["content-type"] ?? "application/json" });
        up.pipe(res);
        up.on("end", resolve);
        up.on("error", reject);
      });
      upstream.on("error", reject);
      req.pipe(upstream);
    });
  }

  const listener = new Listener<RouterHost>("router", log, async (req, res, entry) => {
    let segs: string[];
    let rawPath: string;
    try {
      rawPath = new URL(req.url ?? "/", listener.url).pathname;
      segs = decodeSegments(rawPath);
    } catch {
      return err(req, res, 400, "malformed URL", "invalid_request_error", null);
    }
    const isApi = segs[0] === "api";
    if (options.apiOnly && segs[0] === "v0" && segs[1] === "models") return err(req, res, 404, "not found", "not_found_error", null);
    const isModels = (segs[0] === "v0" || isApi) && segs[1] === "models";
    const isBlob = isModels && segs[2] === "blob" && segs.length >= 4;
    const id = isBlob ? segs.slice(3).join("/") : undefined;
    if (id !== undefined) entry.file = id;
    // A fault scoped to a path matches a blob by its model id, any other route by its path ("/v0/health").
    const f = faults.takeRequestFault({ host: "router", path: id ?? rawPath });
    if (f) {
      if (f.kind === "rateLimit") {
        return err(req, res, 429, "rate limited (stand-in)", "rate_limit_error", "rate_limit_exceeded", { "Retry-After": String(f.resetSeconds) });
      }
      return err(req, res, f.status, statusText(f.status), f.status >= 500 ? "server_error" : "invalid_request_error", null);
    }
    const method = req.method ?? "GET";
    if (segs[0] === "v1" && method === "POST") return proxy(req, res, req.url ?? rawPath);
    if ((apiKey !== undefined || isApi) && bearerToken(req) !== apiKey) {
      if (realRouter) {
        const message = req.headers.authorization === undefined ? "Missing X-API-Key header or Authorization header" : "Invalid API key";
        return send(req, res, 401, { "content-type": "text/plain; charset=utf-8" }, message);
      }
      return err(req, res, 401, "Invalid API key", "authentication_error", "invalid_api_key", { "WWW-Authenticate": 'Bearer realm="llmlb"' });
    }
    if (segs.length === 2 && segs[0] === "v0" && segs[1] === "nodes") {
      if (method !== "POST") return err(req, res, 405, "method not allowed", "invalid_request_error", null);
      return register(req, res);
    }
    if (segs.length === 2 && segs[0] === "v0" && segs[1] === "health" && method === "POST") return heartbeat(req, res);
    if (isModels && segs.length === 2) {
      if (method !== "GET" && method !== "HEAD") return err(req, res, 405, "method not allowed", "invalid_request_error", null);
      return sendJson(req, res, 200, modelList());
    }
    if (isModels && segs[2] === "registry" && segs.length === 5 && segs[4] === "manifest.json") {
      const manifest = manifests.get(segs[3]!);
      if (!manifest) return err(req, res, 404, `no manifest for ${segs[3]}`, "not_found_error", "model_not_found");
      return sendJson(req, res, 200, manifest);
    }
    if (id !== undefined) {
      if (method !== "GET" && method !== "HEAD") return err(req, res, 405, "method not allowed", "invalid_request_error", null);
      const m = models.get(id);
      if (!m) return err(req, res, 404, `model not found: ${id}`, "not_found_error", "model_not_found");
      return sendBlob(req, res, m.blob, {
        ...(realRouter
          ? { ranges: false, headers: { "Content-Disposition": `attachment; filename="${id.split("/").pop()}"` } }
          : { etag: options.digests === false ? `"${m.blob.sha256.slice(0, 16)}"` : `"${m.blob.sha256}"`, lastModified: m.addedAt }),
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
    registrations,
    heartbeats,
    nodes,
    clearLog: () => log.clear(),
    bytesServed: (id) => log.fileBytes(undefined, id),
    async addModel(given, src, hf) {
      const s = typeof src === "string" ? { path: src } : src;
      const blob = await toBlob(s, false);
      const id = realRouter && hf ? hf.repo.toLowerCase().replace(/^\/+|\/+$/g, "") : given;
      models.set(id, { blob, addedAt: new Date(), ...(hf ? { hf } : {}) });
      return { id, size_bytes: blob.size, sha256: blob.sha256 };
    },
    removeModel(id) {
      models.delete(id);
    },
    setManifest(name, manifest) {
      manifests.set(name, manifest);
    },
    setApiKey(key) {
      apiKey = key;
    },
    setAcceptCpuNodes(accept) {
      acceptCpuNodes = accept;
    },
    forgetNode(nodeId) {
      nodes.delete(nodeId);
    },
    down: (opts = {}) => listener.down(opts.mode ?? "refused"),
    up: () => listener.up(),
    close: () => listener.close(),
  };
}

/** What a pull-era router (llmlb ≥ 3.0) reads when it adds and polls a node. */
export interface PollResult {
  /** GET /api/system answered 2xx JSON containing "xllm_version". */
  detected: boolean;
  system: Record<string, unknown>;
  health: { status: number; deviceCount: unknown; totalMemoryBytes: unknown; usedMemoryBytes: unknown; capabilityScore: unknown; activeRequests: unknown };
  modelIds: string[];
  models: Record<string, unknown>;
  /** /api/models/{id}/info for each id, 404s as null. */
  info: Record<string, Record<string, unknown> | null>;
}

/** Polls a node the way llmlb ≥ 3.0 does: detection, health check, model list, model info. */
export async function pollNode(baseUrl: string, apiKey?: string): Promise<PollResult> {
  const headers: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  const get = (path: string) => fetch(`${baseUrl}${path}`, { headers, signal: AbortSignal.timeout(5000) });
  const systemRes = await get("/api/system");
  const systemText = await systemRes.text();
  const system = systemRes.ok ? (JSON.parse(systemText) as Record<string, unknown>) : {};
  const healthRes = await get("/api/health");
  const health = (await healthRes.json()) as { gpu?: Record<string, unknown>; load?: Record<string, unknown> };
  const modelsRes = await get("/v1/models");
  const models = (await modelsRes.json()) as Record<string, unknown> & { data?: Array<{ id: string }> };
  const modelIds = (models.data ?? []).map((m) => m.id);
  const info: PollResult["info"] = {};
  for (const id of modelIds) {
    // llmlb's own encoding (metadata/xllm.rs): only ' ', '/' and ':' are escaped.
    const r = await get(`/api/models/${id.replaceAll(" ", "%20").replaceAll("/", "%2F").replaceAll(":", "%3A")}/info`);
    info[id] = r.status === 404 ? null : ((await r.json()) as Record<string, unknown>);
  }
  return {
    detected: systemRes.ok && systemText.includes('"xllm_version"'),
    system,
    health: {
      status: healthRes.status,
      deviceCount: health.gpu?.device_count,
      totalMemoryBytes: health.gpu?.total_memory_bytes,
      usedMemoryBytes: health.gpu?.used_memory_bytes,
      capabilityScore: health.gpu?.capability_score,
      activeRequests: health.load?.active_requests,
    },
    modelIds,
    models,
    info,
  };
}
