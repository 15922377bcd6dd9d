#!/usr/bin/env node
// The llmlb-node command of a clone (npx llmlb-node, npm install -g .): runs the TypeScript sources
// through tsx when it is installed, so no build is needed and the code is never stale; without
// devDependencies it runs the built CLI (npm run build).
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const built = path.join(root, "packages/facade/dist/cli.js");

function tsxLoader() {
  try {
    return import.meta.resolve("tsx");
  } catch {
    return undefined;
  }
}

const loader = tsxLoader();
if (loader) {
  const args = ["--conditions=source", "--import", loader, path.join(root, "packages/facade/src/cli.ts"), ...process.argv.slice(2)];
  const child = spawn(process.execPath, args, { stdio: "inherit" });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
} else if (fs.existsSync(built)) {
  await import(pathToFileURL(built).href);
} else {
  process.stderr.write(`llmlb-node: neither tsx (npm install) nor a build (${built}: npm run build) is present in ${root}\n`);
  process.exit(1);
}
