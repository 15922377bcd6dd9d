import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { tempDir } from "../../../testkit/node/index.js";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../../..");

describe("installing the command", () => {
  it("`npx llmlb-node --help`, the README's form, works in the clone without a build", async () => {
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
    expect(readme).toContain("`npx llmlb-node --help` works right after\n`npm install`");
    const { stdout } = await run("npx", ["--no-install", "llmlb-node", "--help"], { cwd: root, timeout: 60_000 });
    expect(stdout).toContain("Usage: llmlb-node");
    expect(stdout).toMatch(/serve\s+serve gRPC/);
  });

  it("`npm install -g .` puts llmlb-node on the PATH, and it runs from any directory", async () => {
    const prefix = tempDir("llmlb-global-");
    try {
      await run("npm", ["install", "-g", ".", "--prefix", prefix.dir, "--offline", "--no-audit", "--no-fund"], { cwd: root, timeout: 120_000 });
      const bin = path.join(prefix.dir, "bin");
      expect(fs.existsSync(path.join(bin, "llmlb-node"))).toBe(true);
      const { stdout } = await run("llmlb-node", ["ls", "--help"], {
        cwd: prefix.dir,
        env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ""}` },
        timeout: 60_000,
      });
      expect(stdout).toContain("Usage: llmlb-node ls");
    } finally {
      prefix.cleanup();
    }
  });
});
