import { invalidRequestTarget } from "../errors/index.js";

/**
 * Percent-escapes that decode to a path separator. Only routes whose model id is one encoded segment
 * may carry one: the blob route (an "org%2Fname" id), and llmlb's `/api/models/{id}/info`, which the
 * router calls with '/' sent as %2F (that route takes %2F only, in its id segment).
 */
const ENCODED_SLASH = /%(2f|5c)/i;
const BLOB_PREFIX = "/v0/models/blob/";
const MODEL_INFO = /^\/api\/models\/[^/]+\/info$/;
const UNRESERVED = /[A-Za-z0-9\-._~]/;

function mayEncodeSeparator(path: string, escape: string): boolean {
  return path.startsWith(BLOB_PREFIX) || (escape.toLowerCase() === "%2f" && MODEL_INFO.test(path));
}

/**
 * Checks that a raw request target (HTTP request line or h2 :path) is the plain, normalised path the
 * router will match, and returns that path without the query. Anything a router or a proxy could
 * read differently from this node is refused: percent-encoded letters, digits or dots, an encoded
 * '/' or '\', dot segments, empty segments, a fragment, an absolute-form or '*' target.
 */
export function normalisedPath(target: string): string {
  if (!target.startsWith("/")) throw invalidRequestTarget(target, "is not a path (absolute-form and '*' targets are not served)");
  if (target.includes("#")) throw invalidRequestTarget(target, "holds a fragment ('#')");
  const query = target.indexOf("?");
  const path = query === -1 ? target : target.slice(0, query);
  // Control characters, spaces and backslashes never appear in a path a client meant to send.
  if ([...path].some((c) => c <= " " || c === "\x7f" || c === "\\")) throw invalidRequestTarget(target, "holds control characters, spaces or '\\'");
  for (const match of path.matchAll(/%([0-9a-fA-F]{2})?/g)) {
    const hex = match[1];
    if (!hex) throw invalidRequestTarget(target, "holds a malformed percent-escape");
    const char = String.fromCharCode(parseInt(hex, 16));
    if (UNRESERVED.test(char)) throw invalidRequestTarget(target, `percent-encodes ${JSON.stringify(char)}, which must be sent as is`);
    if (char.charCodeAt(0) < 0x20 || char === "\x7f") throw invalidRequestTarget(target, "percent-encodes a control character");
    if (ENCODED_SLASH.test(match[0]) && !mayEncodeSeparator(path, match[0])) throw invalidRequestTarget(target, "percent-encodes a path separator");
  }
  const segments = path.split("/").slice(1);
  segments.forEach((segment, i) => {
    if (segment === "." || segment === "..") throw invalidRequestTarget(target, "holds a dot segment ('.' or '..')");
    if (segment === "" && i < segments.length - 1) throw invalidRequestTarget(target, "holds an empty segment ('//')");
  });
  return path;
}
