import { setTimeout as sleep } from "node:timers/promises";
import { isAbortError } from "../errors/index.js";

/** Statuses worth another try: timeouts, rate limits and server errors (hf-http.md). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

type HeaderSource = { get(name: string): string | null } | Record<string, string | string[] | undefined>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === "function") return (headers as { get(n: string): string | null }).get(name) ?? undefined;
  const value = (headers as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * How long the server asks us to wait: `Retry-After` (seconds or an HTTP date) or the
 * Hugging Face `RateLimit: "api";r=0;t=55` header (t = seconds until the window resets).
 */
export function retryAfterMs(headers: HeaderSource, now = Date.now()): number | undefined {
  const rateLimit = header(headers, "ratelimit");
  const reset = rateLimit ? /(?:^|;)\s*t=(\d+)/.exec(rateLimit)?.[1] : undefined;
  if (reset !== undefined) return Number(reset) * 1000;
  const retryAfter = header(headers, "retry-after")?.trim();
  if (!retryAfter) return undefined;
  if (/^\d+$/.test(retryAfter)) return Number(retryAfter) * 1000;
  const date = Date.parse(retryAfter);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

export interface BackoffOptions {
  /** First delay in ms (default 300). */
  baseMs?: number;
  /** Largest delay in ms (default 30 s). */
  maxMs?: number;
}

/** Exponential backoff with jitter (50–100% of the step) for the n-th retry (1-based). */
export function backoffMs(attempt: number, options: BackoffOptions = {}): number {
  const base = options.baseMs ?? 300;
  const step = Math.min(options.maxMs ?? 30_000, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(step * (0.5 + Math.random() * 0.5));
}

/** Network failures worth retrying (resets, refused, timeouts, early close, a body cut mid-chunk); aborts never are. */
export function isRetryableNetworkError(err: unknown): boolean {
  if (isAbortError(err)) return false;
  // undici's parser error for a response cut short (a chunked body whose connection closed mid-way) has no code.
  if ((err as Error | undefined)?.name === "HTTPParserError") return true;
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === "string") {
    return /^(ECONNRESET|ECONNREFUSED|ECONNABORTED|EPIPE|ETIMEDOUT|EAI_AGAIN|ENETUNREACH|EHOSTUNREACH|UND_ERR_.*)$/.test(code);
  }
  return err instanceof TypeError && /fetch failed|terminated|other side closed/i.test(err.message);
}

export interface FetchRetryOptions extends BackoffOptions {
  /** Retries after the first attempt (default 3). */
  retries?: number;
  /** A server asking to wait longer than this is not waited for: its response is returned (default 60 s). */
  maxRetryAfterMs?: number;
  /** Do not retry a refused connection: the host is down, let the next source try (default true). */
  failFastOnRefused?: boolean;
}

/**
 * fetch with retries on 408/429/5xx and network resets, honouring Retry-After and RateLimit.
 * Returns the last response (also a final 429/5xx) so the caller can explain it; throws the last
 * network error. For source providers: `fetchWithRetry(ctx.fetch, url, { signal: ctx.signal })`.
 */
export async function fetchWithRetry(
  fetchFn: typeof fetch,
  url: string | URL,
  init: RequestInit = {},
  options: FetchRetryOptions = {},
): Promise<Response> {
  const retries = options.retries ?? 3;
  const maxWait = options.maxRetryAfterMs ?? 60_000;
  for (let attempt = 0; ; attempt++) {
    let delay: number;
    try {
      const res = await fetchFn(url, init);
      if (!isRetryableStatus(res.status) || attempt >= retries) return res;
      const asked = retryAfterMs(res.headers);
      if (asked !== undefined && asked > maxWait) return res;
      await res.body?.cancel().catch(() => undefined);
      delay = asked ?? backoffMs(attempt + 1, options);
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause ?? err;
      const refused = (cause as { code?: unknown }).code === "ECONNREFUSED";
      if (attempt >= retries || !isRetryableNetworkError(cause) || (refused && options.failFastOnRefused !== false)) throw err;
      delay = backoffMs(attempt + 1, options);
    }
    await sleep(delay, undefined, init.signal ? { signal: init.signal } : undefined);
  }
}
