import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../../../testkit/node/index.js";
import { captureLogger, openStack } from "./resolver-world.js";

const root = path.resolve(import.meta.dirname, "../../..");
const writeChild = path.join(import.meta.dirname, "fixtures", "write-child.ts");

/** The pid of a process that has exited (and so is not running). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(child.stdout);
}

function write(file: string, ageMs: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, "{\"half\":");
  const t = new Date(Date.now() - ageMs);
  fs.utimesSync(file, t, t);
}

describe("temporary files", () => {
  it("are removed when a write fails the way a full disk fails it (writeFileAtomic, a download lock)", async () => {
    const dir = tempDir("llmlb-tmp-write-");
    try {
      // `ulimit -f 0`: files can be created but every byte written fails (EFBIG), as on a full disk.
      const child = spawn("bash", ["-c", `ulimit -f 0; exec "${process.execPath}" --conditions=source --import tsx "${writeChild}" "${dir.dir}"`], {
        cwd: root, stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
      expect(code, err).toBe(0);
      expect(JSON.parse(out)).toEqual({ atomic: "EFBIG", lock: "EFBIG", files: [] });
    } finally {
      dir.cleanup();
    }
  }, 60_000);

  it("left by processes that are gone are swept at start and logged; a live process's are kept", async () => {
    const home = tempDir("llmlb-tmp-sweep-");
    const live = spawn("sleep", ["60"], { stdio: "ignore" });
    try {
      const dead = deadPid();
      const old = 5 * 60_000;
      const leftovers = [
        path.join(".locks", `mid-model.lock.${dead}.0123456789ab.tmp`),
        path.join(".locks", "disk", `reservations.lock.${dead}.0123456789ab.tmp`),
        path.join(".locks", "disk", `reservations.json.${dead}.abcdef012345.tmp`),
        path.join(".locks", "adapters", `a.lock.${dead}.0123456789ab.tmp`),
        path.join("models", ".partial", "mid-model", `mid-F32.gguf.part.json.${dead}.0123456789ab.tmp`),
      ];
      const kept = [
        path.join(".locks", `other.lock.${live.pid}.0123456789ab.tmp`),
        path.join(".locks", `mine.lock.${process.pid}.0123456789ab.tmp`),
        path.join("models", ".partial", "mid-model", `mid-F32.gguf.part.json.${live.pid}.0123456789ab.tmp`),
        // A dead pid's file written moments ago may be a live process's on another host sharing the home.
        path.join(".locks", `fresh.lock.${dead}.0123456789ab.tmp`),
        // Not a temporary file of ours.
        path.join("models", ".partial", "mid-model", "mid-F32.gguf.part"),
      ];
      for (const f of leftovers) write(path.join(home.dir, f), old);
      for (const f of kept) write(path.join(home.dir, f), f.includes("fresh") ? 0 : old);

      const { logger, lines } = captureLogger();
      const stack = await openStack({ home: home.dir, logger });
      await stack.close();

      for (const f of leftovers) expect(fs.existsSync(path.join(home.dir, f)), f).toBe(false);
      for (const f of kept) expect(fs.existsSync(path.join(home.dir, f)), f).toBe(true);
      const swept = lines.filter((l) => l.msg === "removed a leftover from an earlier run");
      expect(swept.map((l) => path.relative(home.dir, l.path as string)).sort()).toEqual([...leftovers].sort());
      expect(swept.every((l) => l.why === "a temporary file of a process that is no longer running" && l.bytes === 8)).toBe(true);
    } finally {
      live.kill();
      home.cleanup();
    }
  });
});
