import { LlmlbError } from "../errors/index.js";
import { ModelState } from "../gen/llmlb/node/v1/model_pb.js";
import type { ModelEntry } from "./model-entry.js";
import type { ModelStateName } from "./model-states.js";
import { STATE_TO_PROTO } from "./model-proto.js";

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/** A ListModels request, checked. */
export interface ListQuery {
  state?: ModelStateName;
  /** Lower-case. */
  tag?: string;
  /** Lower-case free text. */
  text?: string;
  pageSize: number;
  /** Where the previous page ended; none for the first page. */
  cursor?: PageCursor;
  /** Identifies the filters, so a page token cannot be replayed with other ones. */
  filterKey: string;
}

/**
 * The position after a page: the catalog's sequence number of the page's last model, and the
 * catalog instance that numbered it. Models keep their number while they exist, so a model added,
 * removed or changing state between pages neither skips nor repeats another one.
 */
export interface PageCursor {
  afterSeq: number;
  catalogEpoch: string;
}

export interface ListRequestFields {
  pageSize: number;
  pageToken: string;
  state: ModelState;
  tag: string;
  query: string;
}

const PROTO_TO_STATE = new Map<ModelState, ModelStateName>(
  (Object.entries(STATE_TO_PROTO) as Array<[ModelStateName, ModelState]>).map(([name, value]) => [value, name]),
);

export function parseListRequest(req: ListRequestFields): ListQuery {
  if (req.pageSize < 0) throw new LlmlbError("INVALID_ARGUMENT", `page_size must not be negative (got ${req.pageSize})`);
  let state: ModelStateName | undefined;
  if (req.state !== ModelState.UNSPECIFIED) {
    state = PROTO_TO_STATE.get(req.state);
    if (!state) throw new LlmlbError("INVALID_ARGUMENT", `state ${req.state} is not a known model state`);
  }
  const tag = req.tag.trim().toLowerCase() || undefined;
  const text = req.query.trim().toLowerCase() || undefined;
  const filterKey = fnv1a(`${state ?? ""}\u0000${tag ?? ""}\u0000${text ?? ""}`);
  const pageSize = req.pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(req.pageSize, MAX_PAGE_SIZE);
  return {
    ...(state ? { state } : {}),
    ...(tag ? { tag } : {}),
    ...(text ? { text } : {}),
    pageSize,
    ...(req.pageToken ? { cursor: decodePageToken(req.pageToken, filterKey) } : {}),
    filterKey,
  };
}

/** An opaque token: where the page ended, and the filters it belongs to. */
export function encodePageToken(cursor: PageCursor, filterKey: string): string {
  return Buffer.from(`v2:${cursor.afterSeq}:${cursor.catalogEpoch}:${filterKey}`, "utf8").toString("base64url");
}

function decodePageToken(token: string, filterKey: string): PageCursor {
  const match = /^v2:(\d{1,15}):([0-9a-f]{1,32}):(.+)$/.exec(Buffer.from(token, "base64url").toString("utf8"));
  if (!match) {
    throw new LlmlbError("INVALID_PAGE_TOKEN", "page_token was not produced by ListModels; start again without it");
  }
  if (match[3] !== filterKey) {
    throw new LlmlbError("INVALID_PAGE_TOKEN", "page_token belongs to a ListModels call with other filters; use the same state, tag and query");
  }
  return { afterSeq: Number(match[1]), catalogEpoch: match[2]! };
}

/** A token the catalog did not number: from before the node restarted. */
export function staleTokenError(): LlmlbError {
  return new LlmlbError("INVALID_PAGE_TOKEN", "page_token is from before the node restarted; start again without it");
}

/** The lower-case text the free-text filter searches: id, name, description, repo and tags. */
export function searchText(entry: ModelEntry): string {
  return [entry.id, entry.displayName, entry.description, entry.repo, ...entry.tags].join("\n").toLowerCase();
}

export function matchesQuery(query: ListQuery, state: ModelStateName, lowerTags: readonly string[], haystack: string): boolean {
  if (query.state && query.state !== state) return false;
  if (query.tag && !lowerTags.includes(query.tag)) return false;
  return !query.text || haystack.includes(query.text);
}

/** 32-bit FNV-1a of a string, as 8 hex digits: a cheap fingerprint of the filters (not a secret). */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(16).padStart(8, "0");
}
