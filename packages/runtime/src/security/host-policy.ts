import net from "node:net";
import { hostNotAllowed, originNotAllowed } from "../errors/index.js";

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "::1"]);

function isLoopbackAddress(host: string): boolean {
  if (LOOPBACK_NAMES.has(host) || host.endsWith(".localhost")) return true;
  return net.isIPv4(host) && host.startsWith("127.");
}

/**
 * "Example.COM:8080" → "example.com"; "[::1]:80" → "::1". A value that is not host[:port]
 * ("127.0.0.1:80@evil") is returned whole, so it matches no name and is refused.
 */
export function hostName(hostHeader: string): string {
  const value = hostHeader.trim().toLowerCase();
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d+)?$/.exec(value);
  if (bracketed) return bracketed[1]!;
  const plain = /^([^:[\]@/\\\s]+?)\.?(?::\d+)?$/.exec(value);
  return plain ? plain[1]! : value;
}

/**
 * Which Host names and browser origins the node answers. Bound to loopback, only loopback names are
 * served, so a web page that rebinds its own DNS name to 127.0.0.1 cannot reach the node
 * (CVE-2024-28224 in Ollama was this). LLMLB_ALLOWED_HOSTS adds names; when set on a node bound to
 * the network, only those names (and loopback ones) are served.
 */
export class HostPolicy {
  private readonly allowedHosts: Set<string>;
  private readonly corsOrigins: Set<string>;
  private readonly restrictHosts: boolean;

  constructor(bindHost: string, allowedHosts: readonly string[], corsOrigins: readonly string[]) {
    this.allowedHosts = new Set(allowedHosts.map((h) => hostName(h)));
    this.corsOrigins = new Set(corsOrigins.map((o) => o.trim().replace(/\/+$/, "").toLowerCase()));
    // "*" opts out of the check (e.g. behind a proxy that already checks Host).
    this.restrictHosts = !this.allowedHosts.has("*") && (isLoopbackAddress(bindHost) || this.allowedHosts.size > 0);
  }

  get corsEnabled(): boolean {
    return this.corsOrigins.size > 0;
  }

  /** Throws HOST_NOT_ALLOWED unless the Host (or :authority) names this node. */
  checkHost(host: string | undefined): void {
    if (!this.restrictHosts) return;
    const name = hostName(host ?? "");
    if (isLoopbackAddress(name) || this.allowedHosts.has(name)) return;
    throw hostNotAllowed(host ?? "");
  }

  isCorsOrigin(origin: string): boolean {
    return this.corsOrigins.has(origin.trim().replace(/\/+$/, "").toLowerCase());
  }

  /**
   * Throws ORIGIN_NOT_ALLOWED for a browser request from another origin (not the node's own page,
   * not in LLMLB_CORS_ORIGINS). Only requests that change state are checked: a browser cannot read
   * the answer to a cross-origin GET without CORS headers, but it sends a "simple" POST regardless.
   */
  checkOrigin(origin: string | undefined, host: string | undefined, secFetchSite: string | undefined): void {
    if (origin === undefined) {
      if (secFetchSite === "cross-site") throw originNotAllowed("(cross-site, no Origin)");
      return;
    }
    if (this.isCorsOrigin(origin)) return;
    let sameOrigin = false;
    try {
      sameOrigin = host !== undefined && new URL(origin).host.toLowerCase() === host.trim().toLowerCase();
    } catch {
      sameOrigin = false;
    }
    if (!sameOrigin) throw originNotAllowed(origin);
  }
}
