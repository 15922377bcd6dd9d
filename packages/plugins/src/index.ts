import type { SourceDefaults, SourceEntry } from "@llmlb/runtime/plugin";

/** The node settings the built-in sources use (a node's configuration has them all). */
export interface BuiltinSourceSettings {
  extraModelDirs: readonly string[];
  hfEndpoint: string;
  hfToken: string;
  githubUrl: string;
  githubToken: string;
  routerUrls: readonly string[];
  routerApiKey: string;
  /** The fleet's shared state store (LLMLB_STATE_URL); when set, the peer source joins the chain. */
  stateUrl: string;
}

/** The chain used when config.json has no "sources": the built-ins, loaded like any third-party plugin. */
export const BUILTIN_SOURCES: readonly SourceEntry[] = [
  { module: "@llmlb/plugins/local", priority: 10 },
  { module: "@llmlb/plugins/huggingface", priority: 20 },
  { module: "@llmlb/plugins/github-adapter", priority: 25 },
  { module: "@llmlb/plugins/router-proxy", priority: 30 },
];

/** A node of a fleet asks its peers before any network source (after local files). */
export const PEER_SOURCE: SourceEntry = { module: "@llmlb/plugins/peer", priority: 15 };

/**
 * The built-in chain (with the peer source in a fleet), and each built-in's node-level settings as options (beneath whatever
 * config.json gives it): every source sees only its own endpoint and secret.
 */
export function builtinSourceDefaults(settings: BuiltinSourceSettings): SourceDefaults {
  const byModule: Record<string, Record<string, unknown>> = {
    "@llmlb/plugins/local": { extraModelDirs: [...settings.extraModelDirs] },
    "@llmlb/plugins/huggingface": { hubEndpoint: settings.hfEndpoint, hubToken: settings.hfToken },
    "@llmlb/plugins/github-adapter": { githubUrl: settings.githubUrl, githubToken: settings.githubToken },
    "@llmlb/plugins/router-proxy": { routerUrls: [...settings.routerUrls], routerApiKey: settings.routerApiKey },
  };
  return { sources: settings.stateUrl ? [...BUILTIN_SOURCES, PEER_SOURCE] : BUILTIN_SOURCES, optionsFor: (module) => byModule[module] };
}
