import type { Readable } from "node:stream";

/** The store read API the blob route streams from: a model id in, bytes out, never a path from a URL. */
export interface BlobSource {
  /** Size, strong ETag value (sha256) and mtime of a READY model's file, or undefined. */
  stat(modelId: string): Promise<{ size: number; etag: string; modified: Date } | undefined>;
  /** Bytes start..end (inclusive) of that file. */
  open(modelId: string, range?: { start: number; end: number }): Promise<Readable>;
}
