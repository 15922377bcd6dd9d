import { request } from "undici";

/** An answer from a router: status and the parsed JSON body (undefined when it was not JSON). */
export interface RouterAnswer {
  status: number;
  body: unknown;
}

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
    return { status: res.statusCode, body: parsed };
  }
}

/** The router's reason in an error body ({"error": "…"} or {"error": {"message": "…"}}), else the status. */
export function routerReason(answer: RouterAnswer): string {
  const error = (answer.body as { error?: unknown; message?: unknown } | undefined)?.error ?? (answer.body as { message?: unknown } | undefined)?.message;
  if (typeof error === "string") return error;
  const message = (error as { message?: unknown } | undefined)?.message;
  return typeof message === "string" ? message : `HTTP ${answer.status}`;
}

/**
 * Model ids in a router's model list: the bare array of `GET /v0/models` (keyed by `name`, or `id`
 * when present), or an object with `models` / `data` (newer routers, peer nodes).
 */
export function listedModelIds(body: unknown): string[] {
  const list = Array.isArray(body) ? body : ((body as { models?: unknown; data?: unknown } | undefined)?.models ?? (body as { data?: unknown } | undefined)?.data);
  if (!Array.isArray(list)) return [];
  return list
    .map((m: unknown) => {
      const entry = m as { id?: unknown; name?: unknown } | null;
      return typeof entry?.id === "string" ? entry.id : typeof entry?.name === "string" ? entry.name : undefined;
    })
    .filter((id): id is string => typeof id === "string" && id !== "");
}
