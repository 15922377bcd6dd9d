import { execFile, spawn, type ChildProcess } from "node:child_process";
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

  it("`npm start` hands the SIGTERM a supervisor sends npm to the node, which then drains (not left running without a parent)", async () => {
    // npm passes SIGTERM to the process its script runs; a shell between them would die and leave
    // the node behind. The script runs with a `node` of this test first on its PATH, which reports
    // the signal (npm itself is started with this Node.js, by path).
    const fake = tempDir("llmlb-fake-node-");
    let npm: ChildProcess | undefined;
    try {
      fs.writeFileSync(path.join(fake.dir, "node"), "#!/bin/sh\ntrap 'echo \"got SIGTERM\"; exit 0' TERM\necho \"serving $*\"\nwhile :; do sleep 0.05; done\n", { mode: 0o755 });
      const npmCli = path.join(path.dirname(fs.realpathSync(process.execPath)), "../lib/node_modules/npm/bin/npm-cli.js");
      const started = spawn(process.execPath, [npmCli, "start", "--ignore-scripts", "--silent"], {
        cwd: root,
        env: { ...process.env, PATH: `${fake.dir}${path.delimiter}${process.env.PATH ?? ""}` },
        stdio: ["ignore", "pipe", "inherit"],
        detached: true, // its own process group, killed whole below whatever happens
      });
      npm = started;
      let out = "";
      started.stdout.on("data", (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => started.once("exit", (code) => resolve(code)));
      const deadline = Date.now() + 30_000;
      while (!out.includes("serving") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(out).toContain("serving packages/facade/dist/cli.js serve");
      started.kill("SIGTERM");
      await exited;
      expect(out).toContain("got SIGTERM");
    } finally {
      if (npm?.pid) {
        try {
          process.kill(-npm.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      fake.cleanup();
    }
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
