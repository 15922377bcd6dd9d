import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePrometheusText } from "../../../testkit/metrics/prometheus-text.js";
import { failureLabels, resolveModel, sha256OfFile, spawnChildNode, startTestNode, type ChildNode, type TestNode } from "../../../testkit/node/index.js";
import { redisMissing } from "../../../testkit/services/index.js";
import { startSlowLink, type SlowLink } from "../../../testkit/standins/index.js";
import { FLEET_MODEL_ID, startFleetWorld, type FleetWorld } from "../../../testkit/world/fleet-world.js";

const MiB = 1 << 20;
const SIZE = 32 * MiB;

/** What a node's blob route has sent so far (/metrics). */
async function blobBytesSent(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return parsePrometheusText(text).get("llmlb_blob_sent_bytes_total")?.samples[0]?.value ?? 0;
}

/** Polls until check() holds, failing after timeoutMs (expect.poll works inside tests only). */
async function until(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function modelState(url: string): Promise<string> {
  const res = await fetch(`${url}/v0/models/${FLEET_MODEL_ID}`);
  return ((await res.json()) as { state: string }).state;
}

const noRedis = redisMissing();
if (noRedis) console.warn(`skipping the fleet multi-peer tests: ${noRedis}`);

describe.skipIf(noRedis !== undefined)("a file fetched from several peers at once", () => {
  let world: FleetWorld;
  /** One in front of each holder (its advertised URL): paced during the tests, so a transfer lasts long enough to kill a peer mid-way. */
  let links: SlowLink[] = [];
  let holders: TestNode[] = [];
  let child: ChildNode;
  let pullers: TestNode[] = [];
  /** Warnings the process printed (the nodes run in it): a fleet download must print none. */
  const warnings: Error[] = [];
  const collectWarning = (warning: Error) => warnings.push(warning);

  beforeAll(async () => {
    process.on("warning", collectWarning);
    world = await startFleetWorld(SIZE);
    links = await Promise.all([startSlowLink(), startSlowLink(), startSlowLink()]);
    const behind = (i: number) => ({ ...world.env, LLMLB_ADVERTISE_URL: links[i]!.url });
    [holders, child, pullers] = await Promise.all([
      Promise.all([startTestNode(behind(0)), startTestNode(behind(1))]),
      spawnChildNode(behind(2)),
      Promise.all([startTestNode(world.env), startTestNode(world.env)]),
    ]);
    [holders[0]!.httpUrl, holders[1]!.httpUrl, child.httpUrl].forEach((url, i) => links[i]!.setTarget(url));
    // Three holders: one from the hub, the others from it.
    expect((await resolveModel(holders[0]!, FLEET_MODEL_ID)).source).toBe("huggingface");
    expect((await resolveModel(holders[1]!, FLEET_MODEL_ID)).source).toBe("peer");
    expect((await fetch(`${child.httpUrl}/v0/models/${FLEET_MODEL_ID}/pull`, { method: "POST" })).status).toBe(202);
    await until(async () => (await modelState(child.httpUrl)) === "ready", "the child node holds the model", 30_000);
    await until(async () => (await pullers[0]!.runtime.fleet!.view.holders(FLEET_MODEL_ID)).length === 3, "the directory lists 3 holders", 20_000);
    // 3 peers x 4 connections x 1 MiB/s: about 3 s for the file.
    for (const link of links) link.setRate(MiB);
  }, 90_000);
  afterAll(async () => {
    process.off("warning", collectWarning);
    await Promise.allSettled([...holders, ...pullers].map((n) => n.stop()));
    await child?.stop();
    await Promise.allSettled(links.map((l) => l.close()));
    await world?.close();
  });

  it("3 peers hold the model: a 4th node takes a non-zero share of the file from each of them and ends with verified bytes", async () => {
    const peers = [holders[0]!.httpUrl, holders[1]!.httpUrl, child.httpUrl];
    const before = await Promise.all(peers.map(blobBytesSent));
    const hubBefore = world.hubBytes();

    const done = await resolveModel(pullers[0]!, FLEET_MODEL_ID);

    const sent = (await Promise.all(peers.map(blobBytesSent))).map((n, i) => n - before[i]!);
    expect(done.source).toBe("peer");
    expect(failureLabels(done)).toEqual(["local: NOT_HERE"]);
    for (const share of sent) expect(share).toBeGreaterThan(0);
    expect(sent.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(SIZE);
    // 12 connections share one cancellation signal: Node's "possible EventTarget memory leak" warning is not for them.
    expect(warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);
    expect(sha256OfFile(done.path)).toBe(world.sha256);
    expect(world.hubBytes()).toBe(hubBefore);
  });

  it("one of the 3 peers is killed (SIGKILL) mid-transfer: its ranges go to the other two and the file ends verified", async () => {
    const relayed = () => links.reduce((n, l) => n + l.bytesRelayed, 0);
    const before = relayed();
    let finished = false;
    const pulled = resolveModel(pullers[1]!, FLEET_MODEL_ID).finally(() => (finished = true));
    await expect.poll(() => relayed() - before, { timeout: 20_000, interval: 20 }).toBeGreaterThan(SIZE / 4);
    expect(finished).toBe(false);
    await child.kill9();

    const done = await pulled;
    expect(done.source).toBe("peer");
    expect(failureLabels(done)).toEqual(["local: NOT_HERE"]); // within the same transfer, not by a second attempt
    expect(sha256OfFile(done.path)).toBe(world.sha256);
  });

  it("one of the peers serves a corrupted copy: the file still ends verified, and only that peer is ever blamed", async () => {
    // The child died above (until its directory entry expires, the peer source finds it unreachable and leaves it out);
    // the peers now are holders[0], holders[1] and pullers[0]. holders[0]'s copy is damaged on disk, behind the store's back.
    for (const link of links) link.setRate(null);
    const bad = holders[0]!;
    const file = (await bad.runtime.store.getModel(FLEET_MODEL_ID))!.path;
    fs.chmodSync(file, 0o644);
    const handle = fs.openSync(file, "r+");
    // A wrong byte in every 512 KiB past the header: whatever ranges it serves are wrong.
    for (let at = MiB / 2; at < SIZE; at += MiB / 2) fs.writeSync(handle, Buffer.from([0x5a ^ world.bytes[at]!]), 0, 1, at);
    fs.closeSync(handle);
    const puller = pullers[1]!;
    expect((await fetch(`${puller.httpUrl}/v0/models/${FLEET_MODEL_ID}`, { method: "DELETE" })).status).toBe(200);

    const done = await resolveModel(puller, FLEET_MODEL_ID);
    expect(done.source).toBe("peer");
    expect(sha256OfFile(done.path)).toBe(world.sha256);
    // The parts of several peers failing together name nobody: the file comes once more from one peer alone,
    // and only if that one was the damaged copy is a peer blamed — that one.
    const blamed = done.failures.filter((f) => f.source === "peer" && f.code === "CHECKSUM_MISMATCH").map((f) => f.reason);
    expect(blamed.length).toBeLessThanOrEqual(1);
    for (const reason of blamed) expect(reason).toContain(new URL(links[0]!.url).host);
    if (blamed.length === 1) expect(await puller.runtime.fleet!.view.holders(FLEET_MODEL_ID)).not.toContain(links[0]!.url);
  });
});
