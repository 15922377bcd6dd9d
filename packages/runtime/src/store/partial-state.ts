import fs from "node:fs/promises";
import { writeFileAtomic } from "./fs-utils.js";

/**
 * Sidecar of a partial download (`<file>.part.json`): what the .part file holds, so another run —
 * after a crash or kill -9 — resumes it only if it is the same content.
 */
export interface PartialState {
  schema: 1;
  /** The URL the source gave (not a redirect target, which may be signed and short-lived). */
  url: string;
  size?: number;
  sha256?: string;
  revision?: string;
  /** Strong ETag or Last-Modified of the content, sent back as If-Range. */
  validator?: string;
  /** Byte ranges [start, end) known to be in the .part file. */
  done: Array<[number, number]>;
}

export async function readPartialState(file: string): Promise<PartialState | undefined> {
  try {
    const data = JSON.parse(await fs.readFile(file, "utf8")) as PartialState;
    if (data?.schema !== 1 || typeof data.url !== "string" || !Array.isArray(data.done)) return undefined;
    const done = data.done.filter(
      (r): r is [number, number] => Array.isArray(r) && Number.isSafeInteger(r[0]) && Number.isSafeInteger(r[1]) && r[0] >= 0 && r[1] > r[0],
    );
    return { ...data, done };
  } catch {
    return undefined;
  }
}

export async function writePartialState(file: string, state: PartialState): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(state), { fsync: true });
}

/** Whether a saved partial belongs to the file about to be downloaded. */
export function samePartial(saved: PartialState, wanted: { url: string; size?: number; sha256?: string }): boolean {
  if (wanted.sha256 && saved.sha256) return wanted.sha256 === saved.sha256 && (wanted.size === undefined || saved.size === undefined || wanted.size === saved.size);
  return saved.url === wanted.url && (wanted.size === undefined || saved.size === wanted.size);
}
