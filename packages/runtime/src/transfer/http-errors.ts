import type { IncomingHttpHeaders } from "node:http";
import { LlmlbError } from "../errors/index.js";
import { headerValue } from "./http-client.js";
import { isRetryableStatus, retryAfterMs } from "./retry.js";

/** A response worth retrying (408, 429, 5xx); the transfer decides how long to wait. */
export class RetryableHttpError extends Error {
  override readonly name = "RetryableHttpError";
  constructor(
    readonly status: number,
    readonly host: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(`${host} answered HTTP ${status}`);
  }
}

/** A connection that trickles: fewer bytes in a stall window than the slowest useful link sends. */
export class TooSlowError extends Error {
  override readonly name = "TooSlowError";
  constructor(
    readonly bytes: number,
    readonly seconds: number,
  ) {
    super(`${bytes} bytes in ${seconds} s, under ${MIN_BYTES_PER_SECOND} bytes/s`);
  }
}

/** Below this a connection counts as stalled (LLMLB_STALL_TIMEOUT is the window), as curl's --speed-limit would. */
export const MIN_BYTES_PER_SECOND = 1024;

/** The connection closed before the bytes asked for arrived; the download resumes where it stopped. */
export class ConnectionEndedError extends Error {
  override readonly name = "ConnectionEndedError";
  constructor(
    readonly at: number,
    readonly expected: number,
  ) {
    super(`the connection ended at byte ${at} of ${expected}`);
  }
}

/** A cached redirect target (a signed CDN URL) stopped working; the source's own URL is asked again. */
export class ExpiredRedirectError extends Error {
  override readonly name = "ExpiredRedirectError";
  constructor(readonly status: number) {
    super(`the redirect target answered ${status}`);
  }
}

/** What the transfer engine makes of an HTTP status that is not a success (sources name their own errors at locate time). */
export function httpStatusError(status: number, headers: IncomingHttpHeaders, url: string): Error {
  const host = new URL(url).host;
  if (isRetryableStatus(status)) return new RetryableHttpError(status, host, retryAfterMs(headers));
  const said = headerValue(headers, "x-error-message");
  const detail = said ? `: ${said}` : "";
  const meta = { host, http_status: String(status) };
  if (status === 401) return new LlmlbError("AUTH_REQUIRED", `${host} requires credentials (HTTP 401)${detail}`, meta);
  if (status === 403) return new LlmlbError("ACCESS_DENIED", `${host} refused access (HTTP 403)${detail}`, meta);
  if (status === 404 || status === 410) return new LlmlbError("FILE_NOT_FOUND", `${host} has no such file (HTTP ${status})${detail}`, meta);
  return new LlmlbError("SOURCE_UNAVAILABLE", `${host} answered HTTP ${status}${detail}`, meta);
}
