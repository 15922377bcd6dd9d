/**
 * `@llmlb/runtime/plugin`: everything a source plugin may use, and nothing else of the runtime.
 * Built-in and third-party sources import only this entry.
 */
export {
  definePlugin,
  type ArtifactKind,
  type ArtifactSpec,
  type RemoteFile,
  type FileMirror,
  type LocateResult,
  type PluginInit,
  type SourceContext,
  type SourceProvider,
  type SourcePlugin,
  type FleetView,
} from "./contract.js";
export type { SourceDefaults } from "./loader.js";
export type { SourceEntry } from "../config/config-file.js";
export type { ModelEntry } from "../catalog/model-entry.js";
export type { Logger } from "../logging/logger.js";
export { LlmlbError, isLlmlbError, isAbortError, REASONS, ERROR_DOMAIN, type Reason, type ErrorMetadata } from "../errors/index.js";
export { mapBounded, MAX_PARALLEL_LOOKUPS } from "./bounded.js";
export { fetchWithRetry, retryAfterMs, backoffMs, isRetryableStatus, type FetchRetryOptions } from "../transfer/retry.js";
export { parseAdapterRef, adapterIdFromRef, type AdapterRef } from "../resolver/adapter-ref.js";
export { idToFileName } from "../store/model-id.js";
export { routerModelName } from "../catalog/router-model-name.js";
