/**
 * A fleet pulling one model: how often the hub serves it, and how long until every node has it.
 * The Hugging Face stand-in, one Redis (Debian's redis-server) and the nodes run on loopback; the
 * nodes are in-process runtimes sharing this process's event loop (so the time ratio is
 * pessimistic: on separate machines their hashing and disk writes run in parallel).
 *
 *   alone   one node without a fleet pulls the model from the hub (time)
 *   fleet   BENCH_FLEET_NODES nodes with LLMLB_STATE_URL pull it at the same moment
 *
 *   fleet_hub_bytes_ratio = bytes the hub's CDN served for the fleet / file size; target <= 1.1
 *   fleet_time_ratio      = time until all nodes hold the verified model / time of one node alone
 *
 * BENCH_FLEET_MB (default 256), BENCH_FLEET_NODES (8), BENCH_FLEET_HUB_MIBPS (hub bandwidth per
 * connection; default unlimited).
 *   npm run bench -- fleet
 */
import { redisMissing } from "../testkit/services/index.js";
import { resolveModel, startTestNode, type TestNode } from "../testkit/node/index.js";
import { FLEET_MODEL_ID, startFleetWorld } from "../testkit/world/fleet-world.js";

const MIB = 1 << 20;
const SIZE_MB = Number(process.env.BENCH_FLEET_MB ?? 256);
const NODES = Number(process.env.BENCH_FLEET_NODES ?? 8);
const HUB_MIBPS = process.env.BENCH_FLEET_HUB_MIBPS ? Number(process.env.BENCH_FLEET_HUB_MIBPS) : undefined;

async function pull(node: TestNode): Promise<string> {
  return (await resolveModel(node, FLEET_MODEL_ID)).sha256;
}

async function main(): Promise<void> {
  const missing = redisMissing();
  if (missing) throw new Error(`the fleet benchmark needs Redis: ${missing}`);
  const world = await startFleetWorld(SIZE_MB * MIB);
  if (HUB_MIBPS) world.hf.throttle(HUB_MIBPS * MIB, { host: "cdn" });
  try {
    const { LLMLB_STATE_URL: _shared, ...single } = world.env;
    const alone = await startTestNode(single);
    let started = performance.now();
    if ((await pull(alone)) !== world.sha256) throw new Error("the single node got another sha256");
    const aloneMs = performance.now() - started;
    await alone.stop();

    const before = world.hubBytes();
    const nodes = await Promise.all(Array.from({ length: NODES }, () => startTestNode(world.env)));
    try {
      started = performance.now();
      const shas = await Promise.all(nodes.map((n) => pull(n)));
      const fleetMs = performance.now() - started;
      if (shas.some((s) => s !== world.sha256)) throw new Error("a fleet node got another sha256");
      const hubRatio = (world.hubBytes() - before) / (SIZE_MB * MIB);
      console.log(`fleet_hub_bytes_ratio=${hubRatio.toFixed(3)} nodes=${NODES} size_mib=${SIZE_MB} target<=1.1`);
      console.log(
        `fleet_time_ratio=${(fleetMs / aloneMs).toFixed(3)} fleet_s=${(fleetMs / 1000).toFixed(2)} alone_s=${(aloneMs / 1000).toFixed(2)} ` +
          `hub_mibps=${HUB_MIBPS ?? "unlimited"}`,
      );
    } finally {
      await Promise.allSettled(nodes.map((n) => n.stop()));
    }
  } finally {
    await world.close();
  }
}

await main();
