import { afterEach, describe, expect, it } from "vitest";
import type { LiveFile } from "../src/transfer/live-files.js";
import { entry, failure, hfWorld, openStack, payload, type TestStack } from "./resolver-world.js";

const MiB = 1 << 20;
/** Large enough to be hashed on a worker thread while it downloads. */
const SIZE = 32 * MiB;
const FILE = "model.gguf";

/**
 * Watches the running download of model "m" the way the blob route does: every verifiedBytes the
 * live file reports, until the download ends (verified or failed).
 */
async function watch(stack: TestStack): Promise<{ live: LiveFile; seen: number[] }> {
  const dir = stack.store.models.partialDir("m");
  let live: LiveFile | undefined;
  while (!(live = stack.transfer.live.get(dir)?.[0])) await new Promise((r) => setTimeout(r, 5));
  const seen: number[] = [];
  const signal = new AbortController().signal;
  while (!live.failure && live.verifiedBytes !== live.size) {
    seen.push(live.verifiedBytes);
    await live.changed(50, signal);
  }
  seen.push(live.verifiedBytes);
  return { live, seen };
}

describe("how far a file being downloaded is verified (what a peer following the download may read)", () => {
  const world = hfWorld("live", { [FILE]: payload(SIZE, 5) });
  afterEach(() => world.hf.clearFaults());

  it("grows as the download makes bytes durable and hashes them, and reaches the whole file once its sha256 matched", async () => {
    const repo = await world.newRepo();
    world.hf.throttle(16 * MiB, { host: "cdn" });
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url }, models: [entry("m", repo, FILE)] });
    try {
      const [{ live, seen }] = await Promise.all([watch(stack), stack.resolver.resolve({ modelId: "m" })]);
      expect(live.failure).toBeUndefined();
      expect(seen.at(-1)).toBe(SIZE);
      expect(seen.some((n) => n > 0 && n < SIZE)).toBe(true); // readers get bytes while it runs, not only at the end
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
      expect(stack.transfer.live.get(stack.store.models.partialDir("m"))).toBeUndefined(); // nothing runs any more
    } finally {
      await stack.dispose();
    }
  });

  it("a download that fails its sha256 check never reports the whole file as verified, and tells its readers why", async () => {
    const repo = await world.newRepo();
    world.hf.throttle(16 * MiB, { host: "cdn" });
    world.hf.corruptByte(SIZE - 100, { host: "cdn" });
    const stack = await openStack({ env: { HF_ENDPOINT: world.hf.url }, models: [entry("m", repo, FILE)] });
    try {
      const [{ live, seen }, err] = await Promise.all([watch(stack), failure(stack.resolver.resolve({ modelId: "m" }))]);
      expect(err.reason).toBe("CHECKSUM_MISMATCH");
      expect(live.failure?.message).toContain("sha256");
      expect(Math.max(...seen)).toBeLessThan(SIZE);
      expect(Math.max(...seen)).toBeGreaterThan(0);
    } finally {
      await stack.dispose();
    }
  });
});
