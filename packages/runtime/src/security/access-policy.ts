/**
 * Which key scope each route needs, decided by route family so a route added later is covered
 * without touching this file. Scopes nest: read ⊂ inference ⊂ admin. Unknown state-changing routes
 * need admin (default deny).
 */
export const SCOPES = ["read", "inference", "admin"] as const;
export type Scope = (typeof SCOPES)[number];
/** "open": no key needed (health probes, the dashboard page and its assets). */
export type Access = "open" | Scope;

const RANK: Record<Scope, number> = { read: 0, inference: 1, admin: 2 };

export function scopeAllows(held: Scope, needed: Scope): boolean {
  return RANK[held] >= RANK[needed];
}

const OPEN_SERVICES = new Set(["grpc.health.v1.Health"]);
/** Services that only describe: gRPC Server Reflection tells the API's shape, never a model or a file. */
const READ_SERVICES = new Set(["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);
const INFERENCE_SERVICE = "llmlb.node.v1.InferenceService";
const READ_VERB = /^(Get|List|Watch|Check)/;
const ADMIN_VERB = /^(Load|Unload|Delete|Register|Pull|Resolve|Create|Update|Set|Remove)/;

/** Access for a gRPC/Connect method path "/package.Service/Method" (null when it is not one). */
export function rpcAccess(path: string): Access | null {
  const match = /^\/([A-Za-z_][\w.]*\.[A-Za-z_]\w*)\/([A-Za-z_]\w*)$/.exec(path);
  if (!match) return null;
  const [, service, method] = match as unknown as [string, string, string];
  if (OPEN_SERVICES.has(service)) return "open";
  if (READ_SERVICES.has(service)) return "read";
  if (ADMIN_VERB.test(method)) return "admin";
  if (READ_VERB.test(method)) return "read";
  return service === INFERENCE_SERVICE ? "inference" : "admin";
}

/** gRPC methods that hold a stream open for updates (counted against the stream caps). */
export function isRpcSubscription(path: string): boolean {
  return /\/Watch\w*$/.test(path);
}

const SAFE_METHODS = new Set(["GET", "HEAD"]);
/** The dashboard page and its content-hashed files; health for load balancers. */
const OPEN_HTTP = [/^\/$/, /^\/index\.html$/, /^\/assets\/.*/, /^\/v0\/health$/];
/** Families whose POSTs are inference (the OpenAI API and llama-server style token and rerank helpers). */
const INFERENCE_HTTP = [/^\/v1\//, /^\/(tokenize|detokenize|rerank)$/];

/**
 * Access for an HTTP route, given the pattern the router matched (e.g. "/v0/models/*"), or the
 * normalised path when no route matched.
 */
export function httpAccess(method: string, routePath: string): Access {
  const rpc = rpcAccess(routePath);
  if (rpc) return rpc;
  const safe = SAFE_METHODS.has(method);
  if (safe && OPEN_HTTP.some((re) => re.test(routePath))) return "open";
  if (safe) return "read";
  if (INFERENCE_HTTP.some((re) => re.test(routePath))) return "inference";
  return "admin";
}

/** HTTP routes that stream updates (Server-Sent Events), counted against the stream caps. */
export function isHttpSubscription(routePath: string, path: string): boolean {
  return /\/events$/.test(path) || /\/events$/.test(routePath);
}
