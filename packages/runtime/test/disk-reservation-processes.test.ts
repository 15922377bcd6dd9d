import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freeBytes } from "../src/transfer/disk-space.js";
import { spawnChildNode, tempDir, type ChildNode } from "../../../testkit/node/index.js";
import { startHfStandin, type HfStandin } from "../../../testkit/standins/index.js";

const MiB = 1 << 20;
/**
 * Declared big (sparse files: no disk used by the stand-in, and the throttled downloads write
 * little) so that the free-space margin of half a model (1 GiB) dwarfs what the other test files,
 * running at the same time, write meanwhile (the kill loop alone writes 200 MiB).
 */
const SIZE = 2048 * MiB;
const FILE = "big.gguf";
const MODELS = ["big-a", "big-b"] as const;
const repoOf = (id: string) => `reserve-test/${id}`;

interface ModelJson {
  state: string;
  failure_reason: string | null;
}

describe("disk reservations shared by two node processes on one home", () => {
  let hf: HfStandin;
  let home: ReturnType<typeof tempDir>;
  let files: ReturnType<typeof tempDir>;
  const nodes: ChildNode[] = [];

  beforeAll(async () => {
    hf = await startHfStandin();
    files = tempDir("llmlb-reserve-files-");
    for (const [i, id] of MODELS.entries()) {
      const file = path.join(files.dir, `${id}.gguf`);
      fs.writeFileSync(file, `GGUF${i}`);
      fs.truncateSync(file, SIZE);
      await hf.addRepo(repoOf(id), { files: { [FILE]: { path: file } } });
    }
    home = tempDir("llmlb-reserve-home-");
  }, 60_000);
  afterAll(async () => {
    for (const node of nodes) await node.stop();
    await hf?.close();
    home?.cleanup();
    files?.cleanup();
  });

  it("refuses the second node's download with INSUFFICIENT_DISK while the first node's is running, and forgets a killed node's reservation", async () => {
    const supported = path.join(files.dir, "supported_models.json");
    fs.writeFileSync(supported, JSON.stringify({
      models: MODELS.map((id) => ({
        id, name: id, description: "a declared-big file", repo: repoOf(id), recommended_filename: FILE,
        size_bytes: SIZE, required_memory_bytes: SIZE, tags: [], capabilities: ["text-generation"],
      })),
    }));
    // Free space for one model and a half above the reserve: either download fits alone, not both.
    const reserve = (await freeBytes(home.dir)) - Math.round(1.5 * SIZE);
    if (reserve < 0) throw new Error(`this test needs ${(1.5 * SIZE) / MiB} MiB free under ${home.dir}`);
    const env = { LLMLB_HOME: home.dir, HF_ENDPOINT: hf.url, LLMLB_SUPPORTED_MODELS: supported, LLMLB_DISK_RESERVE: String(reserve), LLMLB_DOWNLOAD_CONNECTIONS: "1" };
    for (const id of MODELS) hf.throttle(64 * 1024, { host: "cdn", repoId: repoOf(id) });
    const [first, second] = await Promise.all([spawnChildNode(env, 60_000), spawnChildNode(env, 60_000)]);
    nodes.push(first!, second!);

    expect((await pull(first!, "big-a")).status).toBe(202);
    await expect.poll(() => hf.bytesServed(repoOf("big-a"), FILE), { timeout: 30_000 }).toBeGreaterThan(0);

    expect((await pull(second!, "big-b")).status).toBe(202);
    await expect.poll(async () => (await model(second!, "big-b")).state, { timeout: 30_000 }).toBe("failed");
    const refused = await model(second!, "big-b");
    expect(refused.failure_reason).toMatch(/not enough disk space for .*promised to other downloads running now/);
    expect(hf.bytesServed(repoOf("big-b"), FILE)).toBe(0);

    // A node killed mid-download promises nothing any more: the same download fits now.
    await first!.kill9();
    expect((await pull(second!, "big-b")).status).toBe(202);
    await expect.poll(() => hf.bytesServed(repoOf("big-b"), FILE), { timeout: 30_000 }).toBeGreaterThan(0);
    expect((await model(second!, "big-b")).state).toBe("downloading");
  }, 180_000);
});

function pull(node: ChildNode, id: string): Promise<Response> {
  return fetch(`${node.httpUrl}/v0/models/${id}/pull`, { method: "POST" });
}

async function model(node: ChildNode, id: string): Promise<ModelJson> {
  return (await (await fetch(`${node.httpUrl}/v0/models/${id}`)).json()) as ModelJson;
}
