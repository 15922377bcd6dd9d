import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import rangeParser from "range-parser";
import { Code, ConnectError } from "@connectrpc/connect";
import { isValidModelId, linkedSignal, MAX_CONTEXT_LENGTH, NOTICE_HEADER } from "@llmlb/runtime";
import { ModelState, type Model } from "@llmlb/runtime/gen/llmlb/node/v1/model_pb";
import type { NodeClients } from "../../clients.js";
import { httpErrorOf } from "../error-mapping.js";
import { sendOpenAiError } from "../openai-error.js";
import { openSse } from "../sse.js";
import type { BlobSource } from "./blob-source.js";
import { CAPABILITY_BY_NAME, CAPABILITY_NAMES, loadedModelJson, modelJson, progressJson, stateFromName, STATE_NAMES, stateName } from "./model-json.js";
import { assertPullable, type PullRegistry } from "./pull-registry.js";

interface ListQuery { state?: string; q?: string; tag?: string; page_size?: string; page_token?: string }

const listQuerySchema = {
  type: "object",
  properties: {
    state: { type: "string", enum: [...STATE_NAMES, ...STATE_NAMES.map((s) => s.toUpperCase())] },
    q: { type: "string", maxLength: 200 },
    tag: { type: "string", maxLength: 100 },
    page_size: { type: "string", pattern: "^(?:[1-9]\\d{0,2}|1000)$" },
    page_token: { type: "string", maxLength: 1000 },
  },
  additionalProperties: false,
} as const;

interface RegisterBody {
  repo: string; filename?: string; display_name?: string; id?: string; chat_template?: string;
  description?: string; tags?: string[]; revision?: string; context_length?: number;
  capabilities?: Array<keyof typeof CAPABILITY_BY_NAME>;
}

const registerBodySchema = {
  type: "object",
  required: ["repo"],
  properties: {
    repo: { type: "string", minLength: 1, maxLength: 500 },
    filename: { type: "string", maxLength: 500 },
    display_name: { type: "string", maxLength: 200 },
    id: { type: "string", maxLength: 128 },
    chat_template: { type: "string", maxLength: 100_000 },
    description: { type: "string", maxLength: 2000 },
    tags: { type: "array", items: { type: "string", maxLength: 100 }, maxItems: 50 },
    revision: { type: "string", maxLength: 200 },
    context_length: { type: "integer", minimum: 0, maximum: MAX_CONTEXT_LENGTH },
    capabilities: { type: "array", items: { type: "string", enum: CAPABILITY_NAMES }, maxItems: CAPABILITY_NAMES.length },
  },
  additionalProperties: false,
} as const;

interface LoadBody { adapters?: string[]; keep_alive?: string | number }

const loadBodySchema = {
  type: ["object", "null"],
  properties: {
    adapters: { type: "array", items: { type: "string", minLength: 1 }, maxItems: 8 },
    keep_alive: { anyOf: [{ type: "string", minLength: 1, maxLength: 32 }, { type: "number" }] },
  },
  additionalProperties: false,
} as const;

/** Splits "/v0/models/<id>/<action>" wildcards; ids may contain one "/" (namespace/name). */
function splitAction(rest: string, actions: readonly string[]): { id: string; action: string | undefined } {
  for (const action of actions) {
    if (rest.endsWith(`/${action}`)) return { id: rest.slice(0, -action.length - 1), action };
  }
  return { id: rest, action: undefined };
}

/**
 * The model and action a "/v0/models/<rest>" path names. An id has at most one "/", so
 * "<ns>/events" is either model "<ns>"'s events or model "<ns>/events" itself: a model whose id
 * is the whole path wins (and comes back as `model`), else the action applies.
 */
async function modelPath(clients: NodeClients, rest: string, actions: readonly string[]): Promise<{ id: string; action: string | undefined; model?: Model }> {
  const split = splitAction(rest, actions);
  const whole = split.action !== undefined ? await catalogModel(clients, rest) : undefined;
  return whole ? { id: rest, action: undefined, model: whole } : split;
}

/** The catalog's model with this id; undefined for an id it does not know or that is not an id at all. */
async function catalogModel(clients: NodeClients, id: string): Promise<Model | undefined> {
  if (!isValidModelId(id)) return undefined;
  try {
    return (await clients.catalog.getModel({ modelId: id })).model;
  } catch (err) {
    if (ConnectError.from(err).code === Code.NotFound) return undefined;
    throw err;
  }
}

/** /v0: model management over the catalog and resolver services. */
export function registerModelRoutes(
  app: FastifyInstance,
  clients: NodeClients,
  deps: { pulls: PullRegistry; blobs?: BlobSource | undefined },
): void {
  // Event streams end when the server starts closing, or app.close() would wait for them forever.
  const closing = new AbortController();
  app.addHook("preClose", async () => closing.abort());

  app.get("/v0/events", (request, reply) => streamAllModelEvents(request, reply, clients, closing.signal));

  app.get<{ Querystring: ListQuery }>("/v0/models", { schema: { querystring: listQuerySchema } }, async (request) => {
    const { state, q, tag, page_size, page_token } = request.query;
    const res = await clients.catalog.listModels({
      state: state ? stateFromName(state) : ModelState.UNSPECIFIED,
      query: q ?? "",
      tag: tag ?? "",
      pageSize: page_size ? Number(page_size) : 0,
      pageToken: page_token ?? "",
    });
    return { models: res.models.map(modelJson), next_page_token: res.nextPageToken || null, total_size: res.totalSize };
  });

  app.post<{ Body: RegisterBody }>("/v0/models/register", { schema: { body: registerBodySchema } }, async (request, reply) => {
    const b = request.body;
    const res = await clients.catalog.registerModel({
      repo: b.repo, filename: b.filename ?? "", displayName: b.display_name ?? "", id: b.id ?? "",
      chatTemplate: b.chat_template ?? "", description: b.description ?? "", tags: b.tags ?? [], revision: b.revision ?? "",
      contextLength: b.context_length ?? 0, capabilities: (b.capabilities ?? []).map((name) => CAPABILITY_BY_NAME[name]),
    });
    return reply.code(201).send({
      model: res.model ? modelJson(res.model) : null,
      warnings: res.warnings,
      available_files: res.availableFiles,
    });
  });

  const getModel = async (request: FastifyRequest, reply: FastifyReply, rest: string) => {
    const path = await modelPath(clients, rest, ["events"]);
    if (path.action === "events") return streamModelEvents(request, reply, clients, path.id, closing.signal);
    const model = path.model ?? (await clients.catalog.getModel({ modelId: path.id })).model;
    return model ? modelJson(model) : reply.callNotFound();
  };

  app.get<{ Params: { "*": string } }>("/v0/models/blob/*", async (request, reply) => {
    const found = deps.blobs ? await findBlob(deps.blobs, request.url) : undefined;
    if (!found) {
      // A model in namespace "blob" (or its events) is answered here, where no local model file has that path.
      const rest = `blob/${request.params["*"]}`;
      if ((await catalogModel(clients, rest)) ?? (await catalogModel(clients, splitAction(rest, ["events"]).id))) return getModel(request, reply, rest);
    }
    if (!deps.blobs) {
      return sendOpenAiError(reply, 501, { message: "this HTTP facade serves a remote runtime and has no local model files", type: "server_error", code: "unimplemented" });
    }
    return serveBlob(request, reply, deps.blobs, found);
  });

  app.get<{ Params: { "*": string } }>("/v0/models/*", (request, reply) => getModel(request, reply, request.params["*"]));

  app.get("/v0/loaded", async () => {
    const res = await clients.inference.listLoadedModels({});
    return { models: res.models.map(loadedModelJson), memory_budget_bytes: Number(res.memoryBudgetBytes) };
  });

  app.post<{ Params: { "*": string }; Body: LoadBody | undefined }>("/v0/models/*", { schema: { body: loadBodySchema } }, async (request, reply) => {
    const { id, action } = splitAction(request.params["*"], ["pull", "load", "unload"]);
    if (action === "load") {
      const body = request.body ?? {};
      const res = await clients.inference.loadModel({
        modelId: id,
        adapterIds: body.adapters ?? [],
        ...(body.keep_alive !== undefined ? { keepAlive: String(body.keep_alive) } : {}),
      });
      return res.model ? loadedModelJson(res.model) : null;
    }
    if (action === "unload") {
      const res = await clients.inference.unloadModel({ modelId: id });
      return { model_id: id, unloaded: res.unloaded };
    }
    if (action !== "pull") return reply.callNotFound();
    const { model } = await clients.catalog.getModel({ modelId: id });
    if (model && (model.state === ModelState.READY || model.state === ModelState.LOADED)) {
      return reply.code(200).send({ model_id: id, status: "ready", model: modelJson(model) });
    }
    if (model) assertPullable(model);
    const { started } = deps.pulls.start(id);
    return reply.code(202).send({ model_id: id, status: started ? "started" : "joined", events: `/v0/models/${id}/events` });
  });

  app.delete<{ Params: { "*": string }; Querystring: { remove_registration?: string } }>(
    "/v0/models/*",
    { schema: { querystring: { type: "object", properties: { remove_registration: { enum: ["true", "false", "1", "0"] } } } } },
    async (request, reply) => {
      const { id, action } = await modelPath(clients, request.params["*"], ["pull"]);
      if (action === "pull") {
        await clients.catalog.getModel({ modelId: id }); // an unknown id is a 404, as for every other route
        return { model_id: id, cancelled: await deps.pulls.cancel(id) };
      }
      const res = await clients.catalog.deleteModel(
        { modelId: request.params["*"], removeRegistration: ["true", "1"].includes(request.query.remove_registration ?? "") },
        // A supported model cannot be unregistered: the catalog says so in this header, as on gRPC.
        { onHeader: (headers) => headers.has(NOTICE_HEADER) && void reply.header(NOTICE_HEADER, headers.get(NOTICE_HEADER)) },
      );
      return { model: res.model ? modelJson(res.model) : null, freed_bytes: Number(res.freedBytes) };
    },
  );
}

/** SSE: `state` on connect, `progress` while downloading, then `ready` or `failed` and the stream ends. */
async function streamModelEvents(request: FastifyRequest, reply: FastifyReply, clients: NodeClients, id: string, closing: AbortSignal): Promise<void> {
  await clients.catalog.getModel({ modelId: id }); // unknown id → 404 before the stream opens
  const sse = openSse(reply);
  const { signal, dispose } = linkedSignal(sse.signal, closing);
  try {
    for await (const change of clients.catalog.watchModels({ modelIds: [id], includeInitial: true }, { signal })) {
      const model = change.model;
      if (!model) continue;
      if (change.removed) {
        await sse.send({ model_id: id, state: "removed" }, "removed");
        break;
      }
      if (model.state === ModelState.DOWNLOADING) {
        await sse.send({ model_id: id, state: "downloading", progress: progressJson(model.progress) }, "progress");
      } else if (model.state === ModelState.READY || model.state === ModelState.LOADED) {
        await sse.send(modelJson(model), "ready");
        break;
      } else if (model.state === ModelState.FAILED) {
        await sse.send({ model_id: id, state: "failed", reason: model.failureReason }, "failed");
        break;
      } else {
        await sse.send({ model_id: id, state: stateName(model.state) }, "state");
      }
    }
  } catch (err) {
    if (!signal.aborted) await sse.send({ error: httpErrorOf(err).body }, "error");
  } finally {
    dispose();
    sse.end();
  }
}

/**
 * GET /v0/events — SSE of every model change in the catalog (the dashboard's live feed): event
 * `model` with the model's REST shape on each state or progress change (progress is throttled by
 * WatchModels), `removed` with `{id}` when a registration is forgotten. No initial snapshot: read
 * GET /v0/models after the stream opens.
 */
async function streamAllModelEvents(request: FastifyRequest, reply: FastifyReply, clients: NodeClients, closing: AbortSignal): Promise<void> {
  const sse = openSse(reply);
  const { signal, dispose } = linkedSignal(sse.signal, closing);
  try {
    for await (const change of clients.catalog.watchModels({ modelIds: [], includeInitial: false }, { signal })) {
      const model = change.model;
      if (!model) continue;
      if (change.removed) await sse.send({ id: model.id }, "removed");
      else await sse.send(modelJson(model), "model");
    }
  } catch (err) {
    if (!signal.aborted) await sse.send({ error: httpErrorOf(err).body }, "error");
  } finally {
    dispose();
    sse.end();
  }
}

/**
 * Streams the READY model file `found` at a blob path with Range, ETag (its sha256), Content-Length
 * and `llmlb-verified` (what router-proxy and peer sources fetch); else a download followed as it
 * grows, or 404.
 */
async function serveBlob(request: FastifyRequest, reply: FastifyReply, blobs: BlobSource, found: Awaited<ReturnType<typeof findBlob>>) {
  if (!found && blobs.follow && (await followBlob(blobs, request, reply))) return reply;
  if (!found) {
    return sendOpenAiError(reply, 404, { message: `no READY model file at ${request.url.split("?")[0]}`, type: "not_found_error", param: "id", code: "model_not_found" });
  }
  const { id, file, stat } = found;
  const etag = `"${stat.etag}"`;
  reply.header("accept-ranges", "bytes").header("etag", etag).header("last-modified", stat.modified.toUTCString()).type("application/octet-stream");
  // Whether the ETag (the file's sha256) was known before this node downloaded it: peers verify against it only then.
  reply.header("llmlb-verified", String(stat.verified));
  if (request.headers["if-none-match"] === etag) return reply.code(304).send();
  const rangeHeader = request.headers.range;
  const ifRange = request.headers["if-range"];
  const rangeApplies = rangeHeader && (!ifRange || ifRange === etag);
  if (rangeApplies) {
    const ranges = rangeParser(stat.size, rangeHeader, { combine: true });
    if (ranges === -1) return reply.code(416).header("content-range", `bytes */${stat.size}`).send();
    if (ranges !== -2 && ranges.length === 1) {
      const { start, end } = ranges[0]!;
      reply.code(206).header("content-range", `bytes ${start}-${end}/${stat.size}`).header("content-length", end - start + 1);
      return request.method === "HEAD" ? sendHeadersOnly(reply) : reply.send(await blobs.open(id, file, { start, end }));
    }
  }
  reply.code(200).header("content-length", stat.size);
  return request.method === "HEAD" ? sendHeadersOnly(reply) : reply.send(await blobs.open(id, file));
}

/**
 * A file this node is downloading now, for a peer that follows the download: Content-Length of the
 * whole file, bytes as they land, `llmlb-partial: true`. Ranges are served (a follower resumes);
 * the body is cut short if the download here fails, so it is never taken for a complete file.
 */
async function followBlob(blobs: BlobSource, request: FastifyRequest, reply: FastifyReply): Promise<boolean> {
  const closed = new AbortController();
  reply.raw.once("close", () => closed.abort());
  for (const candidate of blobCandidates(request.url)) {
    const growing = await blobs.follow!(candidate.id, candidate.file, closed.signal);
    if (!growing) continue;
    const { size } = growing;
    // The ETag is the digest the download here checks the file against (from its source or the catalog).
    reply.header("accept-ranges", "bytes").header("etag", `"${growing.sha256}"`).header("llmlb-partial", "true").header("llmlb-verified", "true").type("application/octet-stream");
    const rangeHeader = request.headers.range;
    const ranges = rangeHeader ? rangeParser(size, rangeHeader, { combine: true }) : -2;
    if (ranges === -1) {
      await reply.code(416).header("content-range", `bytes */${size}`).send();
      return true;
    }
    if (ranges !== -2 && ranges.length === 1) {
      const { start, end } = ranges[0]!;
      reply.code(206).header("content-range", `bytes ${start}-${end}/${size}`).header("content-length", end - start + 1);
      if (request.method === "HEAD") sendHeadersOnly(reply);
      else await reply.send(growing.open({ start, end }));
      return true;
    }
    reply.code(200).header("content-length", size);
    if (request.method === "HEAD") sendHeadersOnly(reply);
    else await reply.send(growing.open());
    return true;
  }
  return false;
}

/**
 * `/v0/models/blob/{id}[/{file}]`: the id is one encoded segment ("org%2Fname") or, unencoded,
 * "org/name"; a further segment names a part of a sharded model.
 */
function blobCandidates(url: string): Array<{ id: string; file?: string }> {
  const raw = url.split("?")[0]!.slice("/v0/models/blob/".length).split("/").filter(Boolean);
  let segments: string[];
  try {
    segments = raw.map((s) => decodeURIComponent(s));
  } catch {
    return [];
  }
  const candidates: Array<{ id: string; file?: string }> = [];
  if (segments.length === 1) candidates.push({ id: segments[0]! });
  if (segments.length === 2) candidates.push({ id: segments[0]!, file: segments[1]! }, { id: `${segments[0]}/${segments[1]}` });
  if (segments.length === 3) candidates.push({ id: `${segments[0]}/${segments[1]}`, file: segments[2]! });
  return candidates;
}

async function findBlob(blobs: BlobSource, url: string) {
  for (const candidate of blobCandidates(url)) {
    const stat = await blobs.stat(candidate.id, candidate.file);
    if (stat) return { ...candidate, stat };
  }
  return undefined;
}

/** Answers a HEAD with the headers a GET would carry (fastify would rewrite Content-Length to 0). */
function sendHeadersOnly(reply: FastifyReply): void {
  reply.hijack();
  reply.raw.writeHead(reply.statusCode, reply.getHeaders() as Record<string, string | number>);
  reply.raw.end();
}
