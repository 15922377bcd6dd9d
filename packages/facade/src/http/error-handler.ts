import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { FastifyError, FastifyInstance, FastifyRequest } from "fastify";
import { LlmlbError, fromConnectError, requestTooLarge } from "@llmlb/runtime";
import { httpErrorOf } from "./error-mapping.js";
import { JsonBodyError } from "./json-body.js";
import { sendOpenAiError } from "./openai-error.js";

/** Turns request-shape problems and service errors into OpenAI-shaped 4xx/5xx answers. */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    if (error.validation) {
      const first = mostTelling(error.validation);
      const params = first?.params as { missingProperty?: string; additionalProperty?: string } | undefined;
      const field = fieldName(first?.instancePath ?? "", params?.missingProperty ?? params?.additionalProperty);
      // A property a schema forbids in this shape (false), e.g. `refusal` on a text part, is unsupported there.
      const unsupported = params?.additionalProperty !== undefined || first?.keyword === "false schema";
      // What the client sent that the node cannot take at all (an image, token ids) says so, whatever Ajv reported first.
      const refused = unsupportedContentPart(request.body, first?.instancePath ?? "") ?? tokenIdInput(request.body, first?.instancePath ?? "");
      if (refused) {
        return sendOpenAiError(reply, 400, { message: refused.message, type: "invalid_request_error", param: refused.field, code: refused.code }, { "x-should-retry": "false" });
      }
      if (unsupported) {
        const message = `field "${field}" is not supported by this node; remove it (README lists the fields and extensions it implements)`;
        return sendOpenAiError(reply, 400, { message, type: "invalid_request_error", param: field, code: "unsupported_field" }, { "x-should-retry": "false" });
      }
      const problem = first ? describeProblem(first) : "is invalid";
      const message =
        params?.missingProperty !== undefined ? `missing required field "${field}"` : field ? `invalid field "${field}": ${problem}` : `invalid request body: ${problem}`;
      return sendOpenAiError(reply, 400, { message, type: "invalid_request_error", param: field || null, code: "invalid_request" }, { "x-should-retry": "false" });
    }
    if ((error as Error) instanceof JsonBodyError) {
      return sendOpenAiError(reply, 400, { message: error.message, type: "invalid_request_error", code: "invalid_json" });
    }
    if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      const mapped = httpErrorOf(requestTooLarge(app.initialConfig.bodyLimit ?? 0, false));
      reply.header("connection", "close");
      return sendOpenAiError(reply, mapped.status, mapped.body, mapped.headers);
    }
    if (error.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
      return sendOpenAiError(reply, 415, { message: `unsupported content type "${request.headers["content-type"] ?? ""}"; send application/json`, type: "invalid_request_error", code: "unsupported_media_type" });
    }
    const mapped = httpErrorOf(error instanceof LlmlbError || !error.statusCode ? error : error);
    if (mapped.status >= 500) logServerError(request, error);
    return sendOpenAiError(reply, mapped.status, mapped.body, mapped.headers);
  });
  app.setNotFoundHandler(async (request, reply) =>
    sendOpenAiError(reply, 404, { message: `no route ${request.method} ${request.url.split("?")[0]}`, type: "not_found_error", code: "route_not_found" }),
  );
}

/**
 * A 5xx the node answers on purpose (a typed reason: model not on disk yet, disk full, source
 * unavailable) is a warning without a stack: a router probing with wait_for_model false would
 * otherwise fill the log with errors. Anything else is a bug, logged as an error with its stack.
 */
function logServerError(request: FastifyRequest, error: unknown): void {
  const { reason, message } = fromConnectError(error);
  if (reason !== "INTERNAL") request.log.warn({ reason, message }, "request refused");
  else request.log.error({ err: error }, "request failed");
}

type ValidationError = NonNullable<FastifyError["validation"]>[number];

/**
 * Ajv reports every failed branch of an anyOf in order, so an array where a string or an array of
 * strings is allowed first fails as "must be string". The telling error is in the branch the
 * value's type matched (anything but a type mismatch at the value itself), deepest first, and the
 * same holds again for an anyOf inside that branch; when the type matched no branch, the types of
 * every branch are allowed.
 */
function mostTelling(errors: readonly ValidationError[]): ValidationError | undefined {
  const first = errors[0];
  const anyOf = first ? firstAnyOf(first.schemaPath) : undefined;
  return first && anyOf ? tellingIn(errors, anyOf, first.instancePath) : first;
}

/** The first anyOf a schema path goes through ("#/properties/stop/anyOf/1/type" → "#/properties/stop/anyOf"). */
function firstAnyOf(schemaPath: string): string | undefined {
  return /^(.*?\/anyOf)\/\d+\//.exec(schemaPath)?.[1];
}

/** The telling error among those of `anyOf`'s branches for the value at `at`. */
function tellingIn(errors: readonly ValidationError[], anyOf: string, at: string): ValidationError {
  const branches = errors.filter((e) => e.schemaPath.startsWith(`${anyOf}/`) && (e.instancePath === at || e.instancePath.startsWith(`${at}/`)));
  const matched = branches.filter((e) => !SHAPE_KEYWORDS.has(e.keyword) || e.instancePath !== at);
  if (matched.length === 0) return { ...branches[0]!, keyword: "anyOf", params: { alternatives: [...new Set(branches.flatMap(alternativesOf))] } };
  const best = matched.reduce((deepest, e) => (e.instancePath.length > deepest.instancePath.length ? e : deepest));
  const inner = firstAnyOf(best.schemaPath.slice(anyOf.length));
  if (!inner) return best;
  // The value the inner anyOf is about: where its branches' own type checks failed (or the error's own place).
  const innerAnyOf = anyOf + inner;
  const innerAt = matched.find((e) => e.keyword === "type" && e.schemaPath.startsWith(`${innerAnyOf}/`) && best.instancePath.startsWith(e.instancePath))?.instancePath ?? best.instancePath;
  return tellingIn(matched, innerAnyOf, innerAt);
}

/** Errors that say the value is not of a branch's shape at all (as opposed to a problem inside it). */
const SHAPE_KEYWORDS = new Set(["type", "enum", "const"]);

/** What a shape error allows, in words: "a string", "\"auto\"". */
function alternativesOf(error: ValidationError): string[] {
  const params = error.params as { allowedValue?: unknown; allowedValues?: unknown[] };
  if (error.keyword === "type") return typesOf(error).map((t) => TYPE_NAMES[t] ?? t);
  if (error.keyword === "enum") return (params.allowedValues ?? []).map((v) => JSON.stringify(v));
  if (error.keyword === "const") return [JSON.stringify(params.allowedValue)];
  return [];
}

/** The JSON types a "type" error allows (Ajv gives a list as one comma-separated string). */
function typesOf(error: ValidationError): string[] {
  const type = (error.params as { type?: string | string[] }).type ?? [];
  return [type].flat().flatMap((t) => t.split(","));
}

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  integer: "an integer",
  number: "a number",
  boolean: "a boolean",
  array: "an array",
  object: "an object",
  null: "null",
};

/** ["an integer", "null"] → "an integer or null". */
function orList(names: readonly string[]): string {
  return names.length > 1 ? `${names.slice(0, -1).join(", ")} or ${names.at(-1)}` : (names[0] ?? "of another kind");
}

/** What was wrong with the value, in plain words (Ajv says "must be integer,null", "must NOT have fewer than 1 items"). */
function describeProblem(error: ValidationError): string {
  const params = error.params as { limit?: number; alternatives?: string[] };
  const limit = params.limit ?? 0;
  switch (error.keyword) {
    case "const":
    case "type":
      return `must be ${orList(alternativesOf(error))}`;
    case "enum": {
      const values = alternativesOf(error);
      return values.length > 0 ? `must be one of ${values.join(", ")}` : "is not an allowed value";
    }
    case "anyOf":
      return params.alternatives ? `must be ${orList(params.alternatives)}` : (error.message ?? "is invalid");
    case "minLength":
      return limit === 1 ? "must not be empty" : `must be at least ${limit} characters long`;
    case "maxLength":
      return `must be at most ${limit} characters long`;
    case "minItems":
      return limit === 1 ? "must not be empty" : `must have at least ${limit} items`;
    case "maxItems":
      return `must have at most ${limit} items`;
    default:
      return error.message ?? "is invalid";
  }
}

/** Something the node cannot take, named (`field`), with the way out and its own error code. */
interface Refusal {
  field: string;
  message: string;
  code: string;
}

/** The content parts each route's messages take, all text; the first is the one to send instead. */
const TEXT_PARTS: Record<string, readonly string[]> = {
  messages: ["text", "refusal"],
  input: ["input_text", "output_text", "refusal", "reasoning_text"],
};

/**
 * An image, audio or file part in a message's content (`messages` of /v1/chat/completions, `input`
 * items of /v1/responses, and their function_call_output's output), named with the way out. Ajv alone would report the first branch of the
 * content's schema ("must be string") or an unexpected property.
 */
function unsupportedContentPart(body: unknown, instancePath: string): Refusal | undefined {
  const at = /^\/(messages|input)\/(\d+)\/(content|output)(\/|$)/.exec(instancePath);
  if (!at) return undefined;
  const [, list, item, key] = at as unknown as [string, string, string, "content" | "output"];
  const items = (body as Record<string, unknown> | null)?.[list];
  const content = Array.isArray(items) ? (items[Number(item)] as Record<string, unknown> | null)?.[key] : undefined;
  if (!Array.isArray(content)) return undefined;
  const text = TEXT_PARTS[list]!;
  const index = content.findIndex((part) => typeof part === "object" && part !== null && "type" in part && !text.includes(part.type as string));
  if (index === -1) return undefined;
  const type = JSON.stringify((content[index] as { type: unknown }).type);
  return {
    field: `${list}[${item}].${key}[${index}].type`,
    message: `content parts of type ${type} are not supported: the models this node serves take text only (no image, audio or file input); send the content as a string or as {"type": "${text[0]}", "text": "..."} parts`,
    code: "unsupported_content_part",
  };
}

/**
 * `input` (embeddings) or `prompt` (completions) sent as token ids, which OpenAI's API allows: ids
 * from another tokenizer (LangChain sends tiktoken's by default) mean nothing to this node's models.
 */
function tokenIdInput(body: unknown, instancePath: string): Refusal | undefined {
  const field = /^\/(input|prompt)(\/|$)/.exec(instancePath)?.[1];
  if (!field) return undefined;
  const value = (body as Record<string, unknown> | null)?.[field];
  const ids = (v: unknown) => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "number");
  if (!ids(value) && !(Array.isArray(value) && value.some(ids))) return undefined;
  const hint = field === "input" ? " (LangChain's OpenAIEmbeddings: set check_embedding_ctx_length=False)" : "";
  return {
    field,
    message: `${field} holds token ids; this node takes text only (ids from another tokenizer, such as tiktoken's, mean nothing to its models): send a string or a list of strings${hint}`,
    code: "unsupported_token_input",
  };
}

/** "/messages/0/role" → "messages[0].role"; a missing property is appended. */
export function fieldName(instancePath: string, missing?: string): string {
  const parts = instancePath.split("/").filter(Boolean);
  if (missing) parts.push(missing);
  return parts.reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), "");
}

/**
 * What Node's HTTP parser refuses before Fastify sees a request (a body that does not arrive in
 * time, broken framing, headers too large), answered in OpenAI's shape as every other error, then
 * the connection closed (the parser cannot go on with it); while a response is under way on the
 * connection it is only closed. Fastify's own answer was
 * `{"error":"Request Timeout","message":"Client Timeout"}`, which no SDK reads.
 */
export function clientErrorHandler(limits: { headersTimeoutMs: number; bodyTimeoutMs: number }) {
  return (err: NodeJS.ErrnoException, socket: Duplex): void => {
    if (err.code === "ECONNRESET" || socket.destroyed) return;
    // A response already under way on this connection (bytes pipelined behind a request): an
    // answer written now would land inside it. As Node's own handler, only close.
    if ((socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
      socket.destroy(err);
      return;
    }
    const [status, message, code] =
      err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, `the request did not arrive whole in time: its headers within ${limits.headersTimeoutMs / 1000} s (LLMLB_HEADERS_TIMEOUT) and all of it within ${limits.bodyTimeoutMs / 1000} s (LLMLB_BODY_TIMEOUT); send the Content-Length it announces, or raise the setting`, "request_timeout"]
        : err.code === "HPE_HEADER_OVERFLOW"
          ? [431, "the request's headers are too large (16 KiB at most)", "headers_too_large"]
          : [400, `the request is not valid HTTP/1.1 (${err.code ?? "parse error"}): check how the client frames it`, "malformed_http"];
    const body = JSON.stringify({ error: { message, type: "invalid_request_error", param: null, code } });
    if (socket.writable) {
      socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    }
    socket.destroy(err);
  };
}
