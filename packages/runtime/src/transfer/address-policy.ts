import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

/**
 * Where a redirect may lead. Address classes are ranked from public to loopback; a redirect may
 * go to an address of the same class as the origin or a more public one, never a more private one:
 * a public hub may not send the node to 10.0.0.5, 169.254.169.254 or 127.0.0.1, while a mirror on
 * the LAN may redirect within the LAN and a loopback server (a test stand-in, a local proxy) may
 * redirect anywhere. Hosts in LLMLB_ALLOWED_PRIVATE_HOSTS are exempt (private mirrors behind a
 * public front). Only http and https are followed.
 */
export type AddressClass = "public" | "private" | "link-local" | "loopback";

const RANK: Readonly<Record<AddressClass, number>> = { public: 0, private: 1, "link-local": 2, loopback: 3 };

function blocks(ranges: ReadonlyArray<[string, number, "ipv4" | "ipv6"]>): BlockList {
  const list = new BlockList();
  for (const [net, prefix, type] of ranges) list.addSubnet(net, prefix, type);
  return list;
}

const LOOPBACK = blocks([["127.0.0.0", 8, "ipv4"], ["0.0.0.0", 8, "ipv4"], ["::1", 128, "ipv6"], ["::", 128, "ipv6"]]);
const LINK_LOCAL = blocks([["169.254.0.0", 16, "ipv4"], ["fe80::", 10, "ipv6"]]);
const PRIVATE = blocks([
  ["10.0.0.0", 8, "ipv4"], ["172.16.0.0", 12, "ipv4"], ["192.168.0.0", 16, "ipv4"], ["100.64.0.0", 10, "ipv4"],
  ["fc00::", 7, "ipv6"],
]);

/** The class of one IP address (IPv4-mapped IPv6 addresses count as their IPv4 address). */
export function classifyAddress(address: string): AddressClass {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const ip = mapped ? mapped[1]! : address;
  const type = isIP(ip) === 6 ? "ipv6" : "ipv4";
  if (LOOPBACK.check(ip, type)) return "loopback";
  if (LINK_LOCAL.check(ip, type)) return "link-local";
  if (PRIVATE.check(ip, type)) return "private";
  return "public";
}

/** The most private class among a host's addresses ("localhost" and unresolvable names count as loopback). */
export async function classifyHost(hostname: string): Promise<AddressClass> {
  const host = hostname.replace(/^\[|\]$/g, "");
  if (isIP(host)) return classifyAddress(host);
  if (host === "localhost" || host.endsWith(".localhost")) return "loopback";
  const addresses = await lookup(host, { all: true }).catch(() => [] as Array<{ address: string }>);
  if (addresses.length === 0) return "loopback";
  return addresses.map((a) => classifyAddress(a.address)).reduce((a, b) => (RANK[b] > RANK[a] ? b : a));
}

/** Classifies the host of a URL; replaceable where the network's name service is (the test edge). */
export type HostClassifier = (url: URL) => Promise<AddressClass>;

export const classifyUrlHost: HostClassifier = (url) => classifyHost(url.hostname);

export interface RedirectPolicy {
  classify: HostClassifier;
  /** Host names a redirect may reach whatever their class. */
  allowedPrivateHosts: readonly string[];
}

/** Why a redirect from `from` to `to` is refused, or undefined when it may be followed. */
export async function redirectProblem(from: URL, to: URL, policy: RedirectPolicy): Promise<string | undefined> {
  if (to.protocol !== "http:" && to.protocol !== "https:") {
    return `${from.host} redirected to a ${to.protocol} URL; only http and https are followed`;
  }
  if (policy.allowedPrivateHosts.includes(to.hostname.toLowerCase())) return undefined;
  const [fromClass, toClass] = await Promise.all([policy.classify(from), policy.classify(to)]);
  if (RANK[toClass] <= RANK[fromClass]) return undefined;
  return (
    `${from.host} (a ${fromClass} address) redirected to ${to.host} (a ${toClass} address); a redirect may not lead to a more private network. ` +
    `If ${to.hostname} is your mirror, add it to LLMLB_ALLOWED_PRIVATE_HOSTS`
  );
}
