import type { Readable } from "node:stream";

/** The store read API the blob route streams from: a model id in, bytes out, never a path from a URL. */
export interface BlobSource {
  /**
   * Size, strong ETag value (sha256) and install time of a file of a READY model (the first when no
   * file is named); `verified` when that sha256 was known before the download and the bytes matched it.
   */
  stat(modelId: string, file?: string): Promise<{ size: number; etag: string; modified: Date; verified: boolean } | undefined>;
  /** Bytes start..end (inclusive) of that file. */
  open(modelId: string, file: string | undefined, range?: { start: number; end: number }): Promise<Readable>;
  /**
   * A file of a model this node is downloading now (a peer of the fleet follows it): its size,
   * expected sha256 and a reader that waits for bytes as they land. Undefined when none is running.
   */
  follow?(modelId: string, file: string | undefined, signal: AbortSignal): Promise<
    { size: number; sha256: string; open(range?: { start: number; end: number }): Readable } | undefined
  >;
}
