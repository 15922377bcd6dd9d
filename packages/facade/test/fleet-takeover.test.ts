import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failureLabels, resolveModel, sha256OfFile, spawnChildNode, startTestNode, type ChildNode, type TestNode } from "../../../testkit/node/index.js";
import { redisMissing } from "../../../testkit/services/index.js";
import { FLEET_MODEL_ID, startFleetWorld, type FleetWorld } from "../../../testkit/world/fleet-world.js";

const MiB = 1 << 20;
const SIZE = 32 * MiB;

const noRedis = redisMissing();
if (noRedis) console.warn(`skipping the fleet take-over test: ${noRedis}`);

describe.skipIf(noRedis !== undefined)("the lease holder dies mid-download", () => {
  let world: FleetWorld;
  let holder: ChildNode;
  let follower: TestNode;

  beforeAll(async () => {
    world = await startFleetWorld(SIZE);
    [holder, follower] = await Promise.all([spawnChildNode(world.env), startTestNode(world.env)]);
  });
  afterAll(async () => {
    await follower?.stop();
    await holder?.stop();
    await world?.close();
  });

  it("SIGKILL at ~40%: another node takes the lease over, resumes its own bytes and finishes; the hub serves at most 2x", async () => {
    world.hf.throttle(8 * MiB, { host: "cdn" });
    const pull = await fetch(`${holder.httpUrl}/v0/models/${FLEET_MODEL_ID}/pull`, { method: "POST" });
    expect(pull.status).toBe(202);
    await expect.poll(() => world.hubBytes(), { timeout: 20_000, interval: 50 }).toBeGreaterThan(0.1 * SIZE);

    const resolved = resolveModel(follower, FLEET_MODEL_ID);
    await expect.poll(() => world.hubBytes(), { timeout: 20_000, interval: 50 }).toBeGreaterThan(0.4 * SIZE);
    await holder.kill9();
    world.hf.clearFaults();

    const done = await resolved;
    expect(failureLabels(done)).toContain("peer: SOURCE_UNAVAILABLE"); // it followed the holder until it died
    expect(done.source).toBe("huggingface"); // then took the download over
    expect(sha256OfFile(done.path)).toBe(world.sha256);
    expect(world.hubBytes()).toBeLessThanOrEqual(2 * SIZE);
  });
});
