import type { IncomingHttpHeaders } from "node:http";
import { Agent, fetch as undiciFetch, request, type Dispatcher } from "undici";
import { LlmlbError } from "../errors/index.js";
import { classifyUrlHost, redirectProblem, type RedirectPolicy } from "./address-policy.js";

export interface OpenOptions {
  method?: "GET" | "HEAD";
  /** Sent to every hop (Range, If-Range …). */
  headers?: Record<string, string>;
  /**
   * Sent only while the URL stays on the first URL's origin (credentials such as Authorization):
   * a redirect to another host never sees them.
   */
  originHeaders?: Record<string, string>;
  signal?: AbortSignal;
  /** No response headers, or no body bytes, for this long → the request fails (a stall). */
  timeoutMs?: number;
}

export interface OpenResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData["body"];
  /** The URL that answered, after redirects. */
  url: string;
  redirected: boolean;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
/** At least LLMLB_DOWNLOAD_CONNECTIONS' maximum, so one file's ranged connections never queue. */
export const MAX_CONNECTIONS_PER_ORIGIN = 32;

export interface HttpClientOptions {
  /** Where redirects may lead (default: classify by DNS, no exempt hosts). */
  redirects?: Partial<RedirectPolicy>;
}

/**
 * The node's HTTP client: one keep-alive undici Agent shared by the transfer engine and the
 * plugins, with at most MAX_CONNECTIONS_PER_ORIGIN connections to any one origin.
 */
export class HttpClient {
  readonly dispatcher: Agent;
  /**
   * undici's fetch bound to the shared dispatcher (handed to plugins as ctx.fetch). Redirects it
   * follows obey the same rule as open(): a refused one rejects with REDIRECT_REFUSED.
   */
  readonly fetch: typeof fetch;
  private readonly redirects: RedirectPolicy;

  constructor(options: HttpClientOptions = {}) {
    this.redirects = { classify: classifyUrlHost, allowedPrivateHosts: [], ...options.redirects };
    this.dispatcher = new Agent({
      keepAliveTimeout: 4_000, keepAliveMaxTimeout: 30_000, connect: { timeout: 15_000 }, connections: MAX_CONNECTIONS_PER_ORIGIN,
    });
    const dispatcher = this.dispatcher;
    const raw = (input: string | URL, init: RequestInit | undefined) =>
      undiciFetch(input, { ...(init as object), dispatcher } as Parameters<typeof undiciFetch>[1]) as unknown as Promise<Response>;
    this.fetch = ((input: Parameters<typeof fetch>[0], init?: RequestInit) => {
      // Callers that follow redirects themselves (redirect: "manual"), or pass a Request, get fetch as it is.
      if ((init?.redirect ?? "follow") !== "follow" || input instanceof Request) return raw(input as string, init);
      return this.fetchFollowing(new URL(String(input)), init ?? {}, raw);
    }) as typeof fetch;
  }

  /** Follows redirects one hop at a time, checking each target before it is asked (the fetch standard's rules otherwise). */
  private async fetchFollowing(url: URL, init: RequestInit, raw: (u: URL, i: RequestInit) => Promise<Response>): Promise<Response> {
    const firstOrigin = url.origin;
    let current = url;
    let request: RequestInit = { ...init, redirect: "manual" };
    for (let hop = 0; ; hop++) {
      const res = await raw(current, request);
      const location = res.headers.get("location");
      if (!REDIRECTS.has(res.status) || location === null || hop >= MAX_REDIRECTS) return res;
      await res.body?.cancel().catch(() => undefined);
      const next = new URL(location, current);
      const problem = await redirectProblem(current, next, this.redirects);
      if (problem) throw new LlmlbError("REDIRECT_REFUSED", problem, { from: current.origin, to: next.origin });
      const method = (request.method ?? "GET").toUpperCase();
      if (res.status === 303 ? method !== "HEAD" : (res.status === 301 || res.status === 302) && method === "POST") {
        const { body: _body, ...rest } = request;
        request = { ...rest, method: "GET" };
      }
      if (next.origin !== firstOrigin && request.headers) {
        const headers = new Headers(request.headers);
        headers.delete("authorization");
        request = { ...request, headers };
      }
      current = next;
    }
  }

  /**
   * GET/HEAD following redirects by hand, so credentials never cross to another host and no
   * redirect leads to a more private network (address-policy.ts): such a redirect fails with
   * REDIRECT_REFUSED before anything is requested from its target.
   */
  async open(url: string, options: OpenOptions = {}): Promise<OpenResponse> {
    const method = options.method ?? "GET";
    const firstOrigin = new URL(url).origin;
    let current = new URL(url);
    for (let hop = 0; ; hop++) {
      const headers = {
        "accept-encoding": "identity",
        ...(current.origin === firstOrigin ? options.originHeaders : {}),
        ...options.headers,
      };
      const res = await request(current, {
        method,
        headers,
        dispatcher: this.dispatcher,
        signal: options.signal,
        ...(options.timeoutMs ? { headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs } : {}),
      });
      const location = res.headers.location;
      if (!REDIRECTS.has(res.statusCode) || typeof location !== "string") {
        return { status: res.statusCode, headers: res.headers, body: res.body, url: current.toString(), redirected: hop > 0 };
      }
      await res.body.dump().catch(() => undefined);
      const next = new URL(location, current);
      if (hop >= MAX_REDIRECTS) {
        throw new LlmlbError("SOURCE_UNAVAILABLE", `${firstOrigin} redirected more than ${MAX_REDIRECTS} times (last to ${next.origin}): a redirect loop; check the server or the mirror's configuration`, {
          host: new URL(url).host,
        });
      }
      const problem = await redirectProblem(current, next, this.redirects);
      if (problem) throw new LlmlbError("REDIRECT_REFUSED", problem, { from: current.origin, to: next.origin });
      current = next;
    }
  }

  async close(): Promise<void> {
    await this.dispatcher.destroy().catch(() => undefined);
  }
}

export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Drops a response body we will not read (a destroyed undici body errors; nobody needs that error). */
export function discardBody(body: OpenResponse["body"]): void {
  body.on("error", () => undefined);
  body.destroy();
}
