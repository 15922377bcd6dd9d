import { createHash } from "node:crypto";
import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePrometheusText } from "../../../testkit/metrics/prometheus-text.js";
import { logSink, resolveModel, sha256OfFile, startTestNode, type TestNode } from "../../../testkit/node/index.js";
import { redisMissing } from "../../../testkit/services/index.js";
import { startRouterStandin } from "../../../testkit/standins/index.js";
import { FLEET_MODEL_ID, FLEET_SHARDED_ID, FLEET_UNDIGESTED_ID, startFleetWorld, type FleetWorld } from "../../../testkit/world/fleet-world.js";
import { INSTALLED_SHA256 } from "../../runtime/src/store/store.js";

/**
 * One byte of an installed file flipped where the node cannot see it (bit rot: its record of the
 * file is made to match the new inode, size and times), so its blob route still offers the file:
 * a node changing a file behind its back is caught by the node itself, this only by the peer.
 */
async function rotInPlace(node: TestNode, file: string, installedSha256: string, offset: number): Promise<void> {
  fs.chmodSync(file, 0o644);
  const handle = fs.openSync(file, "r+");
  fs.writeSync(handle, Buffer.from([0x5a ^ fs.readFileSync(file)[offset]!]), 0, 1, offset);
  fs.closeSync(handle);
  await node.runtime.store.remember(INSTALLED_SHA256, file, fs.statSync(file), installedSha256);
}

const MiB = 1 << 20;
const SIZE = 16 * MiB;
const NODES = 8;

/** The sha256 of every file the node holds of the model, and whether its copy is verified. */
async function localCopy(node: TestNode, id: string): Promise<{ sha256s: string[]; verified: boolean }> {
  const model = (await node.runtime.store.getModel(id))!;
  return { sha256s: model.files.map((f) => sha256OfFile(f.path)), verified: model.verified };
}

async function downloadedBytes(node: TestNode): Promise<Record<string, number>> {
  const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const sample of parsePrometheusText(text).get("llmlb_download_bytes_total")?.samples ?? []) out[sample.labels.source ?? ""] = sample.value;
  return out;
}

const noRedis = redisMissing();
if (noRedis) console.warn(`skipping the fleet download tests: ${noRedis}`);

describe.skipIf(noRedis !== undefined)(`one hub download per fleet (${NODES} in-process nodes, one Redis)`, () => {
  let world: FleetWorld;
  let nodes: TestNode[] = [];

  beforeAll(async () => {
    world = await startFleetWorld(SIZE, { shards: 3, shardBytes: 4 * MiB, undigested: 2 * MiB });
    nodes = await Promise.all(Array.from({ length: NODES }, () => startTestNode(world.env)));
  });
  afterAll(async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await world?.close();
  });

  it(`${NODES} nodes pulling at once: the hub serves the file about once and every node ends with the same verified bytes`, async () => {
    world.hf.throttle(16 * MiB, { host: "cdn" }); // about a second: the others follow the download while it runs
    const results = await Promise.all(nodes.map((node) => resolveModel(node, FLEET_MODEL_ID)));
    world.hf.clearFaults();

    expect(world.hubBytes()).toBeLessThanOrEqual(1.1 * SIZE);
    expect(results.filter((r) => r.source === "huggingface")).toHaveLength(1);
    expect(results.filter((r) => r.source === "peer")).toHaveLength(NODES - 1);
    for (const r of results) expect(sha256OfFile(r.path)).toBe(world.sha256);

    const follower = nodes[results.findIndex((r) => r.source === "peer")]!;
    expect((await downloadedBytes(follower)).peer).toBe(SIZE);
    // Where the copy came from, as `llmlb-node ls` and the dashboard show it.
    const shown = (await (await fetch(`${follower.httpUrl}/v0/models/${FLEET_MODEL_ID}`)).json()) as { local: { source: string } };
    expect(shown.local.source).toBe("peer");
    const holder = nodes[results.findIndex((r) => r.source === "huggingface")]!;
    expect((await downloadedBytes(holder)).huggingface).toBe(SIZE);
  });

  it("a peer serving a corrupted byte is skipped and reported (CHECKSUM_MISMATCH naming it); the node gets verified bytes elsewhere", async () => {
    // Only nodes[0] keeps the model, and its copy is damaged on disk behind the store's back.
    for (const node of nodes.slice(1)) expect((await fetch(`${node.httpUrl}/v0/models/${FLEET_MODEL_ID}`, { method: "DELETE" })).status).toBe(200);
    const bad = nodes[0]!;
    const installed = (await bad.runtime.store.getModel(FLEET_MODEL_ID))!;
    await rotInPlace(bad, installed.path, installed.files[0]!.sha256, SIZE / 2);

    const hubBefore = world.hubBytes();
    const fresh = await resolveModel(nodes[1]!, FLEET_MODEL_ID);
    const mismatch = fresh.failures.find((f) => f.code === "CHECKSUM_MISMATCH");
    expect(mismatch?.source).toBe("peer");
    expect(mismatch?.reason).toContain(new URL(bad.httpUrl).host);
    expect(fresh.source).toBe("huggingface");
    expect(sha256OfFile(fresh.path)).toBe(world.sha256);
    expect(world.hubBytes() - hubBefore).toBe(SIZE);

    // The reported peer is not asked again: the next node takes the good copy of nodes[1].
    const next = await resolveModel(nodes[2]!, FLEET_MODEL_ID);
    expect(next.failures.filter((f) => f.code === "CHECKSUM_MISMATCH")).toEqual([]);
    expect(next.source).toBe("peer");
    expect(sha256OfFile(next.path)).toBe(world.sha256);
  });

  it("every part of a sharded model from a peer is checked against its own sha256: a corrupted part 2 is CHECKSUM_MISMATCH naming the peer", async () => {
    // The catalog knows the sha256 of part 1 only; parts 2 and 3 are checked against the digests the peer recorded at install.
    const [holder, fresh, later] = [nodes[3]!, nodes[4]!, nodes[5]!];
    const first = await resolveModel(holder, FLEET_SHARDED_ID);
    expect(first.source).toBe("huggingface");
    expect(await localCopy(holder, FLEET_SHARDED_ID)).toEqual({ sha256s: world.shards.map((s) => s.sha256), verified: true });

    const part2 = (await holder.runtime.store.getModel(FLEET_SHARDED_ID))!.files[1]!;
    await rotInPlace(holder, part2.path, part2.sha256, MiB);

    const hubBefore = world.hf.bytesServed("llmlb-test/fleet-GGUF", world.shards[1]!.name);
    const res = await resolveModel(fresh, FLEET_SHARDED_ID);
    const mismatch = res.failures.find((f) => f.code === "CHECKSUM_MISMATCH");
    expect(mismatch?.source).toBe("peer");
    expect(mismatch?.reason).toContain(new URL(holder.httpUrl).host);
    expect(mismatch?.reason).toContain(world.shards[1]!.name);
    expect(res.source).toBe("huggingface"); // the damaged peer was skipped
    expect(world.hf.bytesServed("llmlb-test/fleet-GGUF", world.shards[1]!.name) - hubBefore).toBe(world.shards[1]!.bytes.length);
    expect(await localCopy(fresh, FLEET_SHARDED_ID)).toEqual({ sha256s: world.shards.map((s) => s.sha256), verified: true });

    // A good peer's copy: every part verified against that peer's recorded digests, so the copy is verified too.
    const next = await resolveModel(later, FLEET_SHARDED_ID);
    expect(next.failures.filter((f) => f.code === "CHECKSUM_MISMATCH")).toEqual([]);
    expect(next.source).toBe("peer");
    expect(await localCopy(later, FLEET_SHARDED_ID)).toEqual({ sha256s: world.shards.map((s) => s.sha256), verified: true });
  });

  it("a peer whose copy has no digest known before its download: its file is size-checked only and the copy is installed verified: false", async () => {
    const router = await startRouterStandin({ digests: false });
    await router.addModel(FLEET_UNDIGESTED_ID, world.undigested);
    const holder = await startTestNode({ ...world.env, LLMLB_ROUTER_URL: router.url });
    try {
      expect((await resolveModel(holder, FLEET_UNDIGESTED_ID)).source).toBe("router-proxy");
      expect((await localCopy(holder, FLEET_UNDIGESTED_ID)).verified).toBe(false);
      const blob = await fetch(`${holder.httpUrl}/v0/models/blob/${FLEET_UNDIGESTED_ID}`, { method: "HEAD" });
      expect(blob.headers.get("llmlb-verified")).toBe("false");

      const res = await resolveModel(nodes[6]!, FLEET_UNDIGESTED_ID);
      expect(res.source).toBe("peer");
      expect(await localCopy(nodes[6]!, FLEET_UNDIGESTED_ID)).toEqual({ sha256s: [createHash("sha256").update(world.undigested).digest("hex")], verified: false });
    } finally {
      await holder.stop();
      await router.close();
    }
  });
});

describe.skipIf(noRedis !== undefined)("a node of the fleet with another API key", () => {
  let world: FleetWorld;
  let holder: TestNode;
  let stranger: TestNode;
  const logs = logSink();

  beforeAll(async () => {
    world = await startFleetWorld(2 * MiB);
    holder = await startTestNode({ ...world.env, LLMLB_API_KEY: "fleet-a-key-0123456789" });
    stranger = await startTestNode({ ...world.env, LLMLB_API_KEY: "fleet-b-key-0123456789", LLMLB_LOG_LEVEL: "info" }, {}, { logTo: logs.stream });
  });
  afterAll(async () => {
    await Promise.allSettled([holder?.stop(), stranger?.stop()]);
    await world?.close();
  });

  it("says that a peer refused its key (once), instead of going to the hub without a word", async () => {
    await resolveModel(holder, FLEET_MODEL_ID);
    const { source } = await stranger.runtime.resolver.resolve({ modelId: FLEET_MODEL_ID });
    expect(source).toBe("huggingface");
    const refused = logs.lines.filter((l) => typeof l.msg === "string" && l.msg.startsWith("a node of the fleet refused this node's key"));
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ level: "warn", peer: holder.httpUrl, status: 401 });
  });
});
