import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { entry, failure, openStack } from "./resolver-world.js";

const SHARDS = 40;
const files = Array.from({ length: SHARDS }, (_, i) => `big-${String(i + 1).padStart(5, "0")}-of-${String(SHARDS).padStart(5, "0")}.gguf`);

describe("bounded fan-out", () => {
  // An upstream router that answers each HEAD after a pause, counting how many are open at once.
  let server: http.Server;
  let open = 0;
  let mostOpen = 0;
  let heads = 0;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.method !== "HEAD") {
        res.writeHead(404).end();
        return;
      }
      heads++;
      open++;
      mostOpen = Math.max(mostOpen, open);
      setTimeout(() => {
        open--;
        res.writeHead(200, { "content-length": "1000", etag: `"${"a".repeat(64)}"` }).end();
      }, 40);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("asks a source about a 40-part model at most 8 requests at a time", async () => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const stack = await openStack({ env: { LLMLB_ROUTER_URL: url, LLMLB_DOWNLOAD_RETRIES: "0" }, models: [entry("big", "org/absent", files[0]!)] });
    try {
      await failure(stack.resolver.resolve({ modelId: "big" }));
      expect(heads).toBe(SHARDS);
      expect(mostOpen).toBeGreaterThan(1);
      expect(mostOpen).toBeLessThanOrEqual(8);
    } finally {
      await stack.dispose();
    }
  });
});
