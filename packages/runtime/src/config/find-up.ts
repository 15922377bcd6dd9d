import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Finds a file in this module's directory or any parent (works from src/ and from dist/). */
export function findUp(name: string, from = path.dirname(fileURLToPath(import.meta.url))): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = path.join(dir, name);
    if (fs.existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}
