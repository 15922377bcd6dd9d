import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readDownloadLock } from "../src/index.js";
import { sizedModelHeader } from "../../../testkit/gguf/sized-gguf.js";
import { mulberry32 } from "../../../testkit/gguf/tiny-gguf.js";
import { startHfStandin, type HfStandin } from "../../../testkit/standins/index.js";
import { sha256OfFile, tempDir } from "../../../testkit/node/index.js";
import { spawnResolveChild } from "./child-process.js";
import { entry, openStack } from "./resolver-world.js";

const SIZE = 200 * 1024 * 1024;
const KILLS = 10;
const FILE = "big.gguf";

/** A 200 MiB valid GGUF on disk (random data after the header) and its sha256, without holding it in memory. */
function writeBigModel(file: string): string {
  const hash = createHash("sha256");
  const fd = fs.openSync(file, "w");
  const head = sizedModelHeader(SIZE);
  fs.writeSync(fd, head);
  hash.update(head);
  for (let left = SIZE - head.length; left > 0; ) {
    const chunk = randomBytes(Math.min(left, 4 << 20));
    fs.writeSync(fd, chunk);
    hash.update(chunk);
    left -= chunk.length;
  }
  fs.closeSync(fd);
  return hash.digest("hex");
}

describe("kill -9 at random points of a 200 MiB install", () => {
  const dir = tempDir("llmlb-killloop-");
  let hf: HfStandin;
  let sha: string;
  beforeAll(async () => {
    const source = path.join(dir.dir, FILE);
    sha = writeBigModel(source);
    hf = await startHfStandin();
    await hf.addRepo("org/big", { files: { [FILE]: { path: source, sha256: sha } } });
    // Slow enough that the kills land all over the file.
    hf.throttle(24 << 20, { host: "cdn" });
  });
  afterAll(async () => {
    await hf?.close();
    dir.cleanup();
  });

  it("never leaves a READY model with wrong bytes, and the next run completes it", async () => {
    const models = [entry("big", "org/big", FILE)];
    const stack = await openStack({ env: { HF_ENDPOINT: hf.url }, models });
    const random = mulberry32(1414);
    const env = { HF_ENDPOINT: hf.url, LLMLB_DOWNLOAD_CONNECTIONS: "4" };
    const killedAt: number[] = [];
    try {
      for (let i = 0; i < KILLS; i++) {
        const child = spawnResolveChild({ home: stack.home, env, models, modelId: "big" });
        await child.waitFor((l) => "event" in l && l.event.type === "progress" && l.event.progress.completedBytes > 0, 60_000);
        // A random moment within the next ~1.5 s of transfer.
        await new Promise((r) => setTimeout(r, Math.floor(random() * 1500)));
        killedAt.push((await readDownloadLock(stack.home, "big"))?.progress.completedBytes ?? -1);
        await child.kill9();
        const ready = await stack.store.getModel("big");
        if (ready) {
          // A child may finish before its kill: then the READY copy must be exactly the file.
          expect(sha256OfFile(ready.path)).toBe(sha);
          break;
        }
      }
      hf.clearFaults();
      const result = await stack.resolver.resolve({ modelId: "big" });
      expect(result).toMatchObject({ sha256: sha, sizeBytes: SIZE });
      expect(sha256OfFile(result.path)).toBe(sha);
      expect((await stack.store.listModels()).map((m) => [m.id, m.verified])).toEqual([["big", true]]);
      // The kills happened mid-transfer, at different points.
      expect(new Set(killedAt).size).toBeGreaterThan(1);
      // Everything fetched before the last kill was reused, not fetched again from zero ten times.
      expect(hf.bytesServed("org/big", FILE)).toBeLessThan(SIZE * 3);
    } finally {
      hf.clearFaults();
      await stack.dispose();
    }
  }, 300_000);
});
