/**
 * Runs every bench/*.bench.ts, one after another, each in its own process with the source
 * build (node --conditions=source --import tsx), and passes their lines through.
 *
 *   npm run bench                 every benchmark
 *   npm run bench -- download     only the files whose name contains "download"
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const dir = import.meta.dirname;
const root = path.resolve(dir, "..");
const filters = process.argv.slice(2);
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts") && (filters.length === 0 || filters.some((x) => f.includes(x))))
  .sort();

if (files.length === 0) {
  console.error(`no benchmark matches ${filters.join(", ")}`);
  process.exit(1);
}

const failed: string[] = [];
for (const file of files) {
  console.log(`# ${file}`);
  const started = performance.now();
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", path.join(dir, file)], { cwd: root, stdio: "inherit" });
    child.on("exit", (c, signal) => resolve(signal ? 128 : c));
  });
  console.log(`# ${file}: ${code === 0 ? "ok" : `failed (exit ${code})`} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (code !== 0) failed.push(file);
}
if (failed.length > 0) {
  console.error(`failed: ${failed.join(", ")}`);
  process.exit(1);
}
