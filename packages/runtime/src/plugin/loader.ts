import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { NodeConfig, SourceEntry } from "../config/index.js";
import { LlmlbError } from "../errors/index.js";
import type { Logger } from "../logging/index.js";
import { ARTIFACT_KINDS, type ArtifactKind } from "../store/artifact-kind.js";
import type { SourcePlugin, SourceProvider } from "./contract.js";

/**
 * What the application embedding the runtime supplies about sources (the facade passes the
 * built-ins of @llmlb/plugins): the chain used when config.json has no "sources", and the options
 * a module gets beneath its own config.json options (the node-level settings it needs).
 */
export interface SourceDefaults {
  sources: readonly SourceEntry[];
  optionsFor?(module: string): Readonly<Record<string, unknown>> | undefined;
}

/** No default sources: only what config.json lists. */
export const NO_SOURCE_DEFAULTS: SourceDefaults = { sources: [] };

const NAME = /^[a-z0-9][a-z0-9._-]*$/;

/** One entry of the effective chain. Disabled entries are listed but never loaded. */
export interface LoadedSource {
  name: string;
  priority: number;
  enabled: boolean;
  kinds: readonly ArtifactKind[];
  /** As written in the configuration (package name or path). */
  module: string;
  options: Readonly<Record<string, unknown>>;
  provider?: SourceProvider;
}

const isPath = (spec: string) => spec.startsWith(".") || path.isAbsolute(spec) || spec.startsWith("file:");

async function importModule(spec: string, configFile: string): Promise<unknown> {
  if (isPath(spec)) {
    const url = spec.startsWith("file:") ? spec : pathToFileURL(path.resolve(path.dirname(configFile), spec)).href;
    return import(/* @vite-ignore */ url);
  }
  try {
    // A bare name resolves from this package, where the built-ins are (works from src and dist).
    return await import(/* @vite-ignore */ spec);
  } catch (err) {
    if ((err as { code?: unknown }).code !== "ERR_MODULE_NOT_FOUND") throw err;
    // Then next to the config file, where a user installs third-party plugins.
    const resolved = createRequire(configFile).resolve(spec);
    return import(/* @vite-ignore */ pathToFileURL(resolved).href);
  }
}

function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}

function checkProvider(value: unknown, module: string): SourceProvider {
  const p = value as Partial<SourceProvider> | undefined;
  const bad = (what: string) =>
    new LlmlbError("INVALID_CONFIG", `source plugin "${module}" is not a valid source provider: ${what}`, { module });
  if (typeof p !== "object" || p === null) throw bad(`its default export is ${describe(value)}, expected a provider object or a factory`);
  if (typeof p.name !== "string" || !NAME.test(p.name)) throw bad("name must be lower-case letters, digits, '.', '-' or '_'");
  if (typeof p.priority !== "number" || !Number.isFinite(p.priority)) throw bad("priority must be a number");
  if (!Array.isArray(p.kinds) || p.kinds.length === 0 || !p.kinds.every((k) => ARTIFACT_KINDS.includes(k))) throw bad('kinds must list "model" and/or "adapter"');
  if (typeof p.locate !== "function") throw bad("locate must be a function");
  return p as SourceProvider;
}

async function loadOne(entry: SourceEntry, options: Readonly<Record<string, unknown>>, config: NodeConfig, logger: Logger): Promise<SourceProvider> {
  let mod: unknown;
  try {
    mod = await importModule(entry.module, config.configFile);
  } catch (err) {
    // Node's resolution errors append the require stack (the config file): one line is enough.
    const message = (err as Error).message.split("\nRequire stack:")[0]!.trim();
    // A plugin file outside this installation resolves its own imports from its own folder.
    const hint = isPath(entry.module) && /Cannot find package '@llmlb\//.test(message)
      ? "; a plugin file resolves its imports from its own folder: install the node's packages there (npm install <this node's folder>/packages/runtime), or leave the import out (definePlugin only types the object: export the provider object or factory itself)"
      : "";
    throw new LlmlbError("INVALID_CONFIG", `cannot load source plugin "${entry.module}": ${message}${hint}`, { module: entry.module }, { cause: err });
  }
  const exported = (mod as { default?: unknown }).default ?? mod;
  const plugin = exported as SourcePlugin;
  let built: unknown;
  try {
    built =
      typeof plugin === "function"
        ? await plugin({ options, logger: logger.child({ source: entry.name ?? entry.module }) })
        : plugin;
  } catch (err) {
    throw new LlmlbError("INVALID_CONFIG", `source plugin "${entry.module}" refused its options: ${(err as Error).message}`, { module: entry.module }, { cause: err });
  }
  return checkProvider(built, entry.module);
}

/** Loads the configured source chain (or the default one), sorted by priority. */
export async function loadSources(config: NodeConfig, logger: Logger, defaults: SourceDefaults = NO_SOURCE_DEFAULTS): Promise<LoadedSource[]> {
  const entries = config.sources ?? defaults.sources;
  const loaded: LoadedSource[] = [];
  for (const entry of entries) {
    const options = { ...defaults.optionsFor?.(entry.module), ...entry.options };
    if (entry.enabled === false) {
      loaded.push({ name: entry.name ?? entry.module, priority: entry.priority ?? 0, enabled: false, kinds: [], module: entry.module, options });
      continue;
    }
    const provider = await loadOne(entry, options, config, logger);
    const name = entry.name ?? provider.name;
    if (loaded.some((s) => s.name === name)) {
      throw new LlmlbError("INVALID_CONFIG", `two sources are named "${name}"; give one a different "name" in config.json`, { module: entry.module });
    }
    loaded.push({ name, priority: entry.priority ?? provider.priority, enabled: true, kinds: [...provider.kinds], module: entry.module, options, provider });
  }
  return loaded.sort((a, b) => a.priority - b.priority);
}
