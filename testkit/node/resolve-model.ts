import { createHash } from "node:crypto";
import fs from "node:fs";
import type { TestNode } from "./test-node.js";

export interface Resolution {
  /** The source that installed the model, and where its (first) file is. */
  source: string;
  path: string;
  sha256: string;
  /** Every source that failed before, in order. */
  failures: Array<{ source: string; code: string; reason: string }>;
}

/** Resolves a model over the node's Resolver service to the end; throws when the stream ends without done. */
export async function resolveModel(node: Pick<TestNode, "clients">, id: string): Promise<Resolution> {
  const failures: Resolution["failures"] = [];
  for await (const res of node.clients.resolver.resolve({ target: { case: "modelId", value: id } })) {
    if (res.event.case === "sourceFailed") failures.push({ source: res.event.value.source, code: res.event.value.code, reason: res.event.value.reason });
    if (res.event.case === "done") return { source: res.event.value.source, path: res.event.value.path, sha256: res.event.value.sha256, failures };
  }
  throw new Error(`resolving ${id}: the stream ended without done`);
}

/** "source: CODE" of every failed source, in order. */
export const failureLabels = (resolution: Resolution): string[] => resolution.failures.map((f) => `${f.source}: ${f.code}`);

/** The sha256 of a file, read in pieces (model files can be large). */
export function sha256OfFile(file: string): string {
  const hash = createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    const buffer = Buffer.alloc(4 << 20);
    for (let n; (n = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0; ) hash.update(buffer.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}
