import { Transform, pipeline, type Readable } from "node:stream";
import { followModelFile, isLlmlbError, type NodeRuntime } from "@llmlb/runtime";
import type { BlobSource } from "./blob-source.js";

/** The stream, counting what passes into /metrics (llmlb_blob_sent_bytes_total); errors carry through. */
function counted(runtime: NodeRuntime, stream: Readable): Readable {
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      runtime.metrics.countBlobBytes(chunk.length);
      done(null, chunk);
    },
  });
  return pipeline(stream, counter, () => {});
}

/** The blob route's view of an in-process runtime's store: its read API, never a path built from a URL. */
export function blobSourceOf(runtime: NodeRuntime): BlobSource {
  return {
    async stat(modelId, file) {
      try {
        const model = await runtime.resolver.intactInstalledModel(modelId);
        const stored = file === undefined ? model?.files[0] : model?.files.find((f) => f.name === file);
        return stored && model ? { size: stored.size, etag: stored.sha256, modified: model.downloadedAt, verified: model.verified } : undefined;
      } catch (err) {
        if (isLlmlbError(err, "INVALID_MODEL_ID")) return undefined;
        throw err;
      }
    },
    async open(modelId, file, range) {
      const read = await runtime.store.openModelFile(modelId, { ...(file ? { file } : {}), ...(range ? { range } : {}) });
      return counted(runtime, read.stream);
    },
    async follow(modelId, file, signal) {
      try {
        // A download that was just handed the cluster's lease may not have written its first bytes yet.
        const starting = runtime.resolver.inFlight().some((job) => job.kind === "model" && job.id === modelId);
        const growing = await followModelFile(runtime.store, runtime.downloads, modelId, {
          ...(file ? { file } : {}),
          startWaitMs: starting ? 10_000 : 0,
          stallMs: runtime.config.stallTimeoutSeconds * 1000,
          signal,
        });
        return growing && { ...growing, open: (range) => counted(runtime, growing.open(range)) };
      } catch (err) {
        if (isLlmlbError(err, "INVALID_MODEL_ID")) return undefined;
        throw err;
      }
    },
  };
}
