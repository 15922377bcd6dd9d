import type { Dispatcher } from "undici";
import type { Logger } from "../logging/index.js";
import type { ModelEntry } from "../catalog/model-entry.js";
import type { ArtifactKind } from "../store/artifact-kind.js";

/**
 * The public contract of a source provider. A provider only *locates* an artifact: it says where
 * the files are (a local path, or remote URLs with size, sha256 and headers), or that it does not
 * have them. The runtime does every transfer, verification and install; a provider never writes
 * into the store.
 */
export type { ArtifactKind } from "../store/artifact-kind.js";

/** What is being asked for. */
export type ArtifactSpec =
  | {
      kind: "model";
      /** Catalog id. */
      id: string;
      model: ModelEntry;
      /** Commit the installed copy came from; sources must fetch exactly this revision when set. */
      pinnedRevision?: string;
    }
  | {
      kind: "adapter";
      /** Store id derived from the reference (e.g. "github--owner--repo--v1--style.gguf"). */
      id: string;
      /** The reference as the user wrote it: "github:owner/repo@tag/asset", "hf:org/repo/file.gguf", a path. */
      ref: string;
    };

/** One file a provider can supply over HTTP(S). */
export interface RemoteFile {
  /** File name inside the artifact's store directory (e.g. "model-00001-of-00002.gguf"). */
  name: string;
  url: string;
  /** Bytes, when known (enables the disk-space check and the size check). */
  size?: number;
  /** Lower-case hex sha256, when known (enables verification). */
  sha256?: string;
  /**
   * Headers for this URL's host only (e.g. Authorization). The transfer engine drops them when a
   * redirect leads to another host.
   */
  headers?: Record<string, string>;
  /**
   * Other URLs serving the very same bytes (e.g. further peers of a fleet holding the file). The
   * transfer engine splits the file's ranges across `url` and these, with parallel connections to
   * each, and drops one that fails or answers inconsistently (its ranges go to the others).
   */
  mirrors?: FileMirror[];
}

/** Another URL of a RemoteFile, with the headers for its host only. */
export interface FileMirror {
  url: string;
  headers?: Record<string, string>;
}

export type LocateResult =
  /**
   * Files already on this machine; used in place, never copied (read-only directories stay untouched).
   * sha256 is informational: the runtime hashes every local file itself before first use.
   */
  | { type: "local"; files: string[]; revision?: string; sha256?: string }
  /** Files to download. revision is the commit they belong to (stored, then pinned). */
  | { type: "remote"; files: RemoteFile[]; revision?: string }
  /** This source does not have it; reason is shown to the user, code is UPPER_SNAKE. */
  | { type: "not-here"; reason: string; code?: string };

/** The fleet this node belongs to (LLMLB_STATE_URL), as a source sees it. */
export interface FleetView {
  /** Base URLs of live peers holding the model READY. */
  holders(modelId: string): Promise<string[]>;
  /** Base URL of the peer downloading the model now (it holds the cluster's lease), if another node does. */
  downloader(modelId: string): Promise<string | undefined>;
  /** Headers every request to a peer carries (the cluster's key). */
  headers(): Record<string, string>;
}

/**
 * What a provider may use. Nothing else of the runtime is reachable from a plugin: no node
 * configuration, no other source's secrets. The node-level settings a built-in source needs (an
 * endpoint, a token) arrive in its options, from the defaults the embedding application passes.
 */
export interface SourceContext {
  /** This source's options: its node-level defaults, overridden by its "options" in config.json. */
  options: Readonly<Record<string, unknown>>;
  logger: Logger;
  /** undici's fetch bound to the node's dispatcher (proxies, keep-alive). */
  fetch: typeof fetch;
  dispatcher: Dispatcher;
  /** Aborted when the caller gives up or the provider's deadline passes. */
  signal: AbortSignal;
  /** Present when the node is part of a fleet (a shared state store is configured). */
  fleet?: FleetView;
}

export interface SourceProvider {
  /** Unique, lower-case (e.g. "huggingface"); shown in events and errors. */
  name: string;
  /** Lower is tried first. Built-ins: local 10, huggingface 20, router-proxy 30, github-adapter 25. */
  priority: number;
  kinds: readonly ArtifactKind[];
  locate(spec: ArtifactSpec, ctx: SourceContext): Promise<LocateResult>;
  /** Optional cleanup at shutdown. */
  close?(): Promise<void> | void;
}

/** A plugin module's default export: a provider, or a factory that builds one from its options. */
export type SourcePlugin = SourceProvider | ((init: PluginInit) => SourceProvider | Promise<SourceProvider>);

/** What a plugin factory is built from. */
export interface PluginInit {
  /** Its options (see SourceContext.options). */
  options: Readonly<Record<string, unknown>>;
  logger: Logger;
}

/** Identity helper that gives a plugin module full types: `export default definePlugin({ … })`. */
export function definePlugin<T extends SourcePlugin>(plugin: T): T {
  return plugin;
}
