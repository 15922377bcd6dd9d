import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failureLabels, resolveModel, sha256OfFile, startTestNode, type TestNode } from "../../../testkit/node/index.js";
import { redisMissing } from "../../../testkit/services/index.js";
import { FLEET_FILE, FLEET_MODEL_ID, startFleetWorld, type FleetWorld } from "../../../testkit/world/fleet-world.js";

const MiB = 1 << 20;
/** Large enough that the download hashes on a worker thread while it arrives. */
const SIZE = 32 * MiB;

/** How far the node's running download of the model is verified (undefined when none runs). */
function verifiedBytes(node: TestNode): number | undefined {
  return node.runtime.downloads.get(node.runtime.store.models.partialDir(FLEET_MODEL_ID))?.[0]?.verifiedBytes;
}

/** The end of the furthest byte the node has written into its partial file (0 when there is none). */
function writtenEnd(node: TestNode): number {
  const part = path.join(node.runtime.store.models.partialDir(FLEET_MODEL_ID), `${FLEET_FILE}.part`);
  try {
    return fs.statSync(part).size;
  } catch {
    return 0;
  }
}

async function pull(node: TestNode): Promise<void> {
  const res = await fetch(`${node.httpUrl}/v0/models/${FLEET_MODEL_ID}/pull`, { method: "POST" });
  expect(res.status).toBe(202);
}

const noRedis = redisMissing();
if (noRedis) console.warn(`skipping the fleet verified-prefix tests: ${noRedis}`);

describe.skipIf(noRedis !== undefined)("a peer following a download gets only verified bytes", () => {
  let world: FleetWorld;
  let nodes: TestNode[] = [];

  beforeAll(async () => {
    world = await startFleetWorld(SIZE);
    nodes = await Promise.all(Array.from({ length: 3 }, () => startTestNode(world.env)));
  });
  afterAll(async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await world?.close();
  });

  it("the hub stalls mid-file: the follower never holds a byte beyond the leader's verified prefix, then both end with the file", async () => {
    const [leader, follower] = [nodes[0]!, nodes[1]!];
    world.hf.throttle(4 * MiB, { host: "cdn" });
    world.hf.stall(SIZE / 2, 3_000, { host: "cdn" });
    await pull(leader);
    await expect.poll(() => world.hubBytes(), { timeout: 10_000, interval: 20 }).toBeGreaterThan(0);

    let finished = false;
    const followed = resolveModel(follower, FLEET_MODEL_ID).finally(() => (finished = true));
    let samples = 0;
    let streamedEarly = 0;
    while (!finished) {
      const held = writtenEnd(follower); // sampled first: the leader's prefix only grows
      const verified = verifiedBytes(leader);
      if (verified !== undefined) {
        expect(held).toBeLessThanOrEqual(verified);
        samples++;
        streamedEarly = Math.max(streamedEarly, held);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    world.hf.clearFaults();
    const done = await followed;

    expect(samples).toBeGreaterThan(20);
    // It did follow the download as it ran (bytes before the leader had the whole file), not wait for the end.
    expect(streamedEarly).toBeGreaterThan(0);
    expect(streamedEarly).toBeLessThan(SIZE);
    expect(done.source).toBe("peer");
    expect(sha256OfFile(done.path)).toBe(world.sha256);
    expect(world.hubBytes()).toBeLessThanOrEqual(1.1 * SIZE);
  });

  it("the leader's download fails its sha256 check: its followers are never handed the file as complete, fail over and end with correct bytes", async () => {
    for (const node of nodes) await fetch(`${node.httpUrl}/v0/models/${FLEET_MODEL_ID}`, { method: "DELETE" });
    const [leader, ...followers] = [nodes[2]!, nodes[0]!, nodes[1]!];
    world.hf.throttle(8 * MiB, { host: "cdn" });
    world.hf.corruptByte(SIZE / 4, { host: "cdn" }); // once: only the leader's copy is damaged
    const hubBefore = world.hubBytes();
    await pull(leader);
    await expect.poll(() => world.hubBytes() - hubBefore, { timeout: 10_000, interval: 20 }).toBeGreaterThan(0);

    const results = await Promise.all(followers.map((node) => resolveModel(node, FLEET_MODEL_ID)));
    world.hf.clearFaults();

    const leaderModel = (await (await fetch(`${leader.httpUrl}/v0/models/${FLEET_MODEL_ID}`)).json()) as { state: string; failure_reason?: string };
    expect(leaderModel.state).toBe("failed");
    for (const r of results) {
      expect(sha256OfFile(r.path)).toBe(world.sha256);
      // The leader never served the whole file, so no follower took its bytes for a complete copy.
      expect(failureLabels(r)).not.toContain("peer: CHECKSUM_MISMATCH");
    }
    // Whoever followed the leader first fell back (to the hub, or to a peer that has the good copy).
    expect(results.flatMap((r) => r.failures).some((f) => f.source === "peer")).toBe(true);
    expect(results.some((r) => r.source === "huggingface")).toBe(true);
  });
});
