import type { NodeRuntime } from "@llmlb/runtime";
import type { BlobSource } from "./blob-source.js";

/** The blob route's view of an in-process runtime's store (its read API, never a path built from a URL). */
export function blobSourceOf(_runtime: NodeRuntime): BlobSource | undefined {
  // Wired to runtime.store once the store lands.
  return undefined;
}
