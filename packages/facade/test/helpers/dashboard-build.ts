import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const facadeRoot = path.resolve(import.meta.dirname, "../..");
export const dashboardSourceDir = path.join(facadeRoot, "dashboard");
export const dashboardDistDir = path.join(facadeRoot, "dist", "dashboard");

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    newest = Math.max(newest, fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/**
 * Builds the dashboard (vite) when dist/dashboard is missing or older than any file under
 * dashboard/. `npm test` runs without a prior `npm run build` (CI: npm ci, lint, test), so the test
 * that needs the page makes sure it exists and is current.
 */
export function ensureDashboardBuilt(): { built: boolean } {
  // Test files run in parallel processes: one builds while the others wait, then find it current.
  const release = lockBuild();
  try {
    return buildIfStale();
  } finally {
    release();
  }
}

function lockBuild(): () => void {
  const lock = path.join(facadeRoot, "dist", ".dashboard-build.lock");
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      fs.closeSync(fs.openSync(lock, "wx"));
      return () => fs.rmSync(lock, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      // A lock older than any build is left over from a killed run.
      const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 120_000 || Date.now() > deadline) fs.rmSync(lock, { force: true });
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
}

function buildIfStale(): { built: boolean } {
  const index = path.join(dashboardDistDir, "index.html");
  if (fs.existsSync(index) && fs.statSync(index).mtimeMs >= newestMtime(dashboardSourceDir)) return { built: false };
  const vite = path.join(path.dirname(createRequire(import.meta.url).resolve("vite/package.json")), "bin", "vite.js");
  execFileSync(process.execPath, [vite, "build", "--config", path.join(dashboardSourceDir, "vite.config.ts")], {
    cwd: facadeRoot,
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 60_000,
  });
  return { built: true };
}
