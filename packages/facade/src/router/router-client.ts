import { request } from "undici";
import type { RouterModelName } from "./model-match.js";

/** An answer from a router: status, the parsed JSON body (undefined when it was not JSON) and the raw text. */
export interface RouterAnswer {
  status: number;
  body: unknown;
  text?: string;
}

const REASON_MAX = 200;

const TIMEOUT_MS = 10_000;

/**
 * HTTP to one llmlb router: its API key as `Authorization: Bearer`, JSON in and out, bounded
 * timeouts. Transport failures throw; any HTTP status is an answer.
 */
export class RouterClient {
  readonly base: string;

  constructor(
    base: string,
    private readonly apiKey: string,
  ) {
    this.base = base.replace(/\/+$/, "");
  }

  async get(path: string, signal?: AbortSignal): Promise<RouterAnswer> {
    return this.send("GET", path, undefined, {}, signal);
  }

  async post(path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<RouterAnswer> {
    return this.send("POST", path, body, headers, signal);
  }

  private async send(method: "GET" | "POST", path: string, body: unknown, headers: Record<string, string>, signal?: AbortSignal): Promise<RouterAnswer> {
    const res = await request(`${this.base}${path}`, {
      method,
      headers: {
        accept: "application/json",
        ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal,
      headersTimeout: TIMEOUT_MS,
      bodyTimeout: TIMEOUT_MS,
    });
    const text = await res.body.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.statusCode, body: parsed, text };
  }
}

/**
 * The router's reason in an error body: {"error": "…"} or {"error": {"message": "…"}}, else a plain
 * text body (the router's auth layer and request rejections answer "Invalid node token" and the
 * like), trimmed and capped, else the status.
 */
export function routerReason(answer: RouterAnswer): string {
  const error = (answer.body as { error?: unknown; message?: unknown } | undefined)?.error ?? (answer.body as { message?: unknown } | undefined)?.message;
  if (typeof error === "string") return error;
  const message = (error as { message?: unknown } | undefined)?.message;
  if (typeof message === "string") return message;
  const text = answer.body === undefined ? answer.text?.trim() : undefined;
  if (!text) return `HTTP ${answer.status}`;
  return text.length > REASON_MAX ? `${text.slice(0, REASON_MAX)}…` : text;
}

/**
 * Models in a router's model list: the bare array of `GET /v0/models` (keyed by `name`, or `id`
 * when present, with `repo` and `filename`), or an object with `models` / `data` (newer routers, peer nodes).
 */
export function listedModels(body: unknown): RouterModelName[] {
  const list = Array.isArray(body) ? body : ((body as { models?: unknown; data?: unknown } | undefined)?.models ?? (body as { data?: unknown } | undefined)?.data);
  if (!Array.isArray(list)) return [];
  const text = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  return list.flatMap((m: unknown) => {
    const entry = (m ?? {}) as { id?: unknown; name?: unknown; repo?: unknown; filename?: unknown };
    const name = text(entry.id) ?? text(entry.name);
    return name === undefined ? [] : [{ name, repo: text(entry.repo), filename: text(entry.filename) }];
  });
}
