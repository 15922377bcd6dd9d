/** Small-response helpers (errors, JSON, redirects) that keep the request log's byte counts right. */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { entryOf } from "./request-log.js";

/** Sends a complete small response; HEAD gets the same headers (Content-Length of the body) and no body. */
export function send(req: IncomingMessage, res: ServerResponse, status: number, headers: OutgoingHttpHeaders, body: string | Uint8Array = ""): void {
  const buf = typeof body === "string" ? Buffer.from(body, "utf8") : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  res.writeHead(status, { ...headers, "Content-Length": buf.byteLength });
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  const entry = entryOf(res);
  res.end(buf, () => {
    if (entry) entry.bytesSent += buf.byteLength;
  });
}

export function sendJson(req: IncomingMessage, res: ServerResponse, status: number, value: unknown, headers: OutgoingHttpHeaders = {}): void {
  send(req, res, status, { "Content-Type": "application/json; charset=utf-8", ...headers }, JSON.stringify(value));
}

/** Default reason texts for injected statuses. */
export function statusText(status: number): string {
  const t: Record<number, string> = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
  };
  return t[status] ?? `HTTP ${status}`;
}

/** Parses `Authorization: Bearer <t>` (and, if allowed, `token <t>`); undefined when absent. "" when present but unusable. */
export function bearerToken(req: IncomingMessage, schemes: readonly string[] = ["bearer"]): string | undefined {
  const h = req.headers.authorization;
  if (h === undefined) return undefined;
  const m = /^\s*(\S+)\s+(\S+)\s*$/.exec(h);
  if (!m || !schemes.includes(m[1]!.toLowerCase())) return "";
  return m[2]!;
}

/** Splits a raw path into percent-decoded segments (so an encoded "/" stays inside its segment). Throws on bad escapes. */
export function decodeSegments(rawPath: string): string[] {
  const segs = rawPath.split("/").slice(1);
  if (segs.length > 0 && segs[segs.length - 1] === "") segs.pop();
  return segs.map((s) => decodeURIComponent(s));
}

/** Encodes each "/"-separated part of a path for use in a URL. */
export function encodePath(p: string): string {
  return p.split("/").map(encodeURIComponent).join("/");
}

/** Makes arbitrary text safe as an HTTP header value (printable ASCII; anything else becomes "?"). */
export function headerSafe(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, "?");
}
