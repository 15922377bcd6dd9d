import type { NodeConfig } from "../config/index.js";
import { authRequired, insufficientScope, isLlmlbError, originNotAllowed, requestTooLarge } from "../errors/index.js";
import type { Logger } from "../logging/index.js";
import { httpAccess, isHttpSubscription, isRpcSubscription, rpcAccess, scopeAllows, type Access } from "./access-policy.js";
import { HostPolicy } from "./host-policy.js";
import { KeyRing } from "./key-ring.js";
import { normalisedPath } from "./request-target.js";
import { StreamCaps } from "./stream-caps.js";
import { TlsMaterial } from "./tls-material.js";

/** What a listener knows about a request before reading its body. */
export interface RequestFacts {
  method: string;
  /** The raw request target (HTTP/1.1 request line, h2 :path). */
  target: string;
  /** The route pattern the HTTP router matched ("/v0/models/*"); the normalised path when absent. */
  routePath?: string | undefined;
  host?: string | undefined;
  authorization?: string | undefined;
  origin?: string | undefined;
  secFetchSite?: string | undefined;
  contentLength?: string | undefined;
  /** Client address, for the per-client stream cap. */
  address: string;
}

export interface Admission {
  /** The key's label ("" when no keys are configured or the route is open). */
  key: string;
  access: Access;
  path: string;
  /** Frees the stream slot of a subscription; call when the response ends (idempotent). */
  release(): void;
}

export type AdmissionOutcome = "allowed" | "unauthenticated" | "forbidden" | "refused";

export interface ListenerLimits {
  maxRequestBytes: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
  idleTimeoutMs: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  maxConcurrentStreams: number;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
const noop = () => {};

/**
 * Everything both listeners check before any body byte is read, in one place: a normalised target,
 * the Host and Origin, the key and its scope for the routed path, the declared size, and the stream
 * caps. Also holds the limits and TLS material the listeners are built with.
 */
export class ListenerGuard {
  readonly keys: KeyRing;
  readonly hosts: HostPolicy;
  readonly streams: StreamCaps;
  readonly tls: TlsMaterial | undefined;
  readonly limits: ListenerLimits;

  constructor(
    config: NodeConfig,
    private readonly logger: Logger,
    private readonly onDecision: (key: string, outcome: AdmissionOutcome) => void = noop,
  ) {
    this.keys = new KeyRing(config.apiKey, config.apiKeysFile);
    this.hosts = new HostPolicy(config.host, config.allowedHosts, config.corsOrigins);
    this.streams = new StreamCaps(config.maxStreamsPerClient, config.maxStreams);
    this.tls = TlsMaterial.fromSettings({ cert: config.tlsCert, key: config.tlsKey, clientCa: config.tlsClientCa });
    this.limits = {
      maxRequestBytes: config.maxRequestBytes,
      headersTimeoutMs: config.headersTimeoutSeconds * 1000,
      bodyTimeoutMs: config.bodyTimeoutSeconds * 1000,
      keepAliveTimeoutMs: config.keepAliveTimeoutSeconds * 1000,
      idleTimeoutMs: config.idleTimeoutSeconds * 1000,
      pingIntervalMs: config.pingIntervalSeconds * 1000,
      pingTimeoutMs: config.pingTimeoutSeconds * 1000,
      maxConcurrentStreams: config.maxConcurrentStreams,
    };
  }

  /** Admits a request or throws the LlmlbError to answer with (400, 401, 403, 413 or 429). */
  admit(facts: RequestFacts): Admission {
    let key = "";
    try {
      const path = normalisedPath(facts.target);
      this.hosts.checkHost(facts.host);
      const route = facts.routePath ?? path;
      const access = httpAccess(facts.method, route);
      if (!SAFE_METHODS.has(facts.method)) this.hosts.checkOrigin(facts.origin, facts.host, facts.secFetchSite);
      if (access !== "open") key = this.authorize(access, facts.authorization, `${facts.method} ${route}`);
      const declared = Number(facts.contentLength ?? 0);
      if (declared > this.limits.maxRequestBytes) throw requestTooLarge(this.limits.maxRequestBytes, false);
      const subscription = rpcAccess(route) ? isRpcSubscription(route) : isHttpSubscription(route, path);
      const release = subscription ? this.streams.acquire(facts.address) : noop;
      if (access === "admin" && key) this.logger.info({ key, method: facts.method, path }, "admin call");
      this.onDecision(key, "allowed");
      return { key, access, path, release };
    } catch (err) {
      const outcome: AdmissionOutcome = isLlmlbError(err, "AUTH_REQUIRED") ? "unauthenticated" : isLlmlbError(err, "INSUFFICIENT_SCOPE") ? "forbidden" : "refused";
      const label = key || (isLlmlbError(err) ? (err.metadata.key ?? "") : "");
      this.onDecision(label, outcome);
      const reason = isLlmlbError(err) ? err.reason : "INTERNAL";
      this.logger[outcome === "forbidden" ? "info" : "debug"]({ key: label || undefined, method: facts.method, address: facts.address, reason }, "request refused");
      throw err;
    }
  }

  /** A CORS preflight carries no key: only the target, the Host and an allowed Origin are checked. */
  admitPreflight(facts: Pick<RequestFacts, "target" | "host" | "origin">): void {
    normalisedPath(facts.target);
    this.hosts.checkHost(facts.host);
    if (!this.hosts.isCorsOrigin(facts.origin ?? "")) throw originNotAllowed(facts.origin ?? "");
  }

  /** Re-reads the keys file and the TLS files (SIGHUP); a bad file is logged and the old one kept. */
  reload(): void {
    try {
      this.keys.reload();
      this.logger.info({ keys: this.keys.labels }, "API keys reloaded");
    } catch (err) {
      this.logger.error({ err }, "API keys not reloaded; the previous keys stay in use");
    }
    if (!this.tls) return;
    try {
      this.tls.reload();
      this.logger.info("TLS certificate reloaded");
    } catch (err) {
      this.logger.error({ err }, "TLS certificate not reloaded; the previous one stays in use");
    }
  }

  private authorize(needed: Exclude<Access, "open">, authorization: string | undefined, what: string): string {
    const auth = this.keys.authenticate(authorization);
    if (auth.kind === "disabled") return "";
    if (auth.kind !== "key") throw authRequired(auth.kind === "invalid");
    if (!scopeAllows(auth.key.scope, needed)) {
      throw insufficientScope(auth.key.label, auth.key.scope, needed, what);
    }
    return auth.key.label;
  }
}
