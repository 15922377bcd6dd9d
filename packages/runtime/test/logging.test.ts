import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../src/index.js";

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      done();
    },
  });
  return { lines, destination };
}

describe("logger", () => {
  it("writes JSON lines with secrets, bearer credentials and signed-URL parameters masked", () => {
    const { lines, destination } = capture();
    const logger = createLogger({ format: "json", destination, secrets: ["hf_SECRETTOKEN"] });
    logger.info({ url: "http://cdn/x.gguf?X-Amz-Signature=abc123&expires=5", headers: { authorization: "Bearer hf_SECRETTOKEN" } }, "fetching with hf_SECRETTOKEN");
    logger.info("GET http://hub/api?token=zzz999 Authorization: Bearer sk-live-123456");
    logger.warn({ router: "https://node:pa55word@router.local:8080/v0" }, "router unreachable");
    const text = lines.join("\n");
    expect(text).not.toContain("hf_SECRETTOKEN");
    expect(text).not.toContain("abc123");
    expect(text).not.toContain("zzz999");
    expect(text).not.toContain("sk-live-123456");
    expect(text).not.toContain("pa55word");
    expect(JSON.parse(lines[2]!).router).toBe("https://node:***@router.local:8080/v0");
    const first = JSON.parse(lines[0]!);
    expect(first).toMatchObject({ level: "info", msg: "fetching with ***", url: "http://cdn/x.gguf?X-Amz-Signature=***&expires=5" });
    expect(first.headers.authorization).toBe("***");
  });
});
