import Keyv from "keyv";
import { afterEach, describe, expect, it, vi } from "vitest";
import { HubInfoCache, type HubStats } from "../src/catalog/hub-info-cache.js";
import { silentLogger } from "../src/logging/index.js";

const TTL = 10 * 60_000;

function cache(fetchStats: (repo: string, signal: AbortSignal) => Promise<{ downloads: number; likes: number } | undefined>, kv = new Keyv<HubStats>()) {
  return new HubInfoCache({ kv, fetchStats, ttlMs: TTL, retryAfterMs: 60_000, concurrency: 2, logger: silentLogger() });
}

/** Lets queued promise callbacks run (fetches resolve on microtasks). */
const settle = () => vi.advanceTimersByTimeAsync(0);

describe("hub info cache", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("honours the 10-minute TTL: no request while fresh, one refresh after, stale value served meanwhile", async () => {
    vi.useFakeTimers({ toFake: ["Date", "setTimeout"] });
    let downloads = 100;
    const fetchStats = vi.fn(async () => ({ downloads: downloads++, likes: 7 }));
    const kv = new Keyv<HubStats>();
    const hub = cache(fetchStats, kv);

    expect(hub.peek("org/a")).toBeUndefined();
    hub.refreshIfStale("org/a");
    await settle();
    expect(fetchStats).toHaveBeenCalledTimes(1);
    expect(hub.peek("org/a")).toMatchObject({ downloads: 100, likes: 7 });

    vi.advanceTimersByTime(TTL - 1000);
    hub.refreshIfStale("org/a");
    await settle();
    expect(fetchStats).toHaveBeenCalledTimes(1);
    expect(await kv.get("org/a")).toMatchObject({ downloads: 100 });

    vi.advanceTimersByTime(2000);
    // Past the TTL: keyv has dropped the entry, memory still serves the stale value until the refresh lands.
    expect(await kv.get("org/a")).toBeUndefined();
    expect(hub.isFresh("org/a")).toBe(false);
    expect(hub.peek("org/a")).toMatchObject({ downloads: 100 });
    hub.refreshIfStale("org/a");
    await settle();
    expect(fetchStats).toHaveBeenCalledTimes(2);
    expect(hub.peek("org/a")).toMatchObject({ downloads: 101 });
    hub.close();
  });

  it("warms from keyv, so a restart within the TTL asks the Hub nothing", async () => {
    const kv = new Keyv<HubStats>();
    await kv.set("org/a", { downloads: 5, likes: 1, fetchedAt: Date.now() }, TTL);
    const fetchStats = vi.fn(async () => ({ downloads: 0, likes: 0 }));
    const hub = cache(fetchStats, kv);
    await hub.warm(["org/a", "org/b"]);
    hub.refreshIfStale("org/a");
    expect(hub.peek("org/a")).toMatchObject({ downloads: 5 });
    expect(fetchStats).not.toHaveBeenCalled();
    hub.close();
  });

  it("never waits, keeps one request per repo and a bounded number overall, and backs off failures", async () => {
    vi.useFakeTimers({ toFake: ["Date", "setTimeout"] });
    const pending: Array<{ repo: string; resolve: (v: { downloads: number; likes: number } | undefined) => void }> = [];
    const fetchStats = vi.fn((repo: string) => new Promise<{ downloads: number; likes: number } | undefined>((resolve) => pending.push({ repo, resolve })));
    const hub = cache(fetchStats);

    for (let i = 0; i < 3; i++) for (const repo of ["org/a", "org/b", "org/c"]) hub.refreshIfStale(repo);
    expect(fetchStats).toHaveBeenCalledTimes(2); // concurrency 2; org/c queued once
    expect(pending.map((p) => p.repo)).toEqual(["org/a", "org/b"]);

    pending.shift()!.resolve(undefined); // org/a fails (e.g. the Hub timed out)
    await settle();
    expect(pending.map((p) => p.repo)).toEqual(["org/b", "org/c"]);

    hub.refreshIfStale("org/a");
    expect(fetchStats).toHaveBeenCalledTimes(3); // backed off: not asked again yet
    vi.advanceTimersByTime(61_000);
    pending.splice(0).forEach((p) => p.resolve({ downloads: 1, likes: 1 }));
    await settle();
    hub.refreshIfStale("org/a");
    expect(fetchStats).toHaveBeenCalledTimes(4);
    hub.close();
  });
});
