import { isLlmlbError, type NodeRuntime } from "@llmlb/runtime";
import type { BlobSource } from "./blob-source.js";

/** The blob route's view of an in-process runtime's store: its read API, never a path built from a URL. */
export function blobSourceOf(runtime: NodeRuntime): BlobSource {
  return {
    async stat(modelId, file) {
      try {
        const read = await runtime.store.openModelFile(modelId, { ...(file ? { file } : {}), range: { start: 0, end: 0 } });
        read.stream.destroy();
        return { size: read.size, etag: read.sha256, modified: read.lastModified };
      } catch (err) {
        if (isLlmlbError(err, "MODEL_NOT_READY") || isLlmlbError(err, "FILE_NOT_FOUND") || isLlmlbError(err, "INVALID_MODEL_ID")) return undefined;
        throw err;
      }
    },
    async open(modelId, file, range) {
      const read = await runtime.store.openModelFile(modelId, { ...(file ? { file } : {}), ...(range ? { range } : {}) });
      return read.stream;
    },
  };
}
