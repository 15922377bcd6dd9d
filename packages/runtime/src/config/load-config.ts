import path from "node:path";
import { LlmlbError } from "../errors/index.js";
import { createRedactor } from "../logging/redact.js";
import { readConfigFile, type SourceEntry } from "./config-file.js";
import { parsePath } from "./parse.js";
import { SETTINGS, type SettingKey, type Settings } from "./settings.js";

export type Origin =
  | { kind: "flag"; name: string }
  | { kind: "env"; name: string }
  | { kind: "file"; name: string }
  | { kind: "default" };

export interface NodeConfig extends Settings {
  /** The config file that was read (it may not exist). */
  configFile: string;
  /** The source chain from the config file; undefined means the built-in default chain. */
  sources: SourceEntry[] | undefined;
  /** Where each value came from, for `llmlb-node config`. */
  origins: Record<SettingKey | "configFile", Origin>;
}

export interface LoadConfigOptions {
  /** Command-line values by setting key (camelCase), as the CLI parsed them. */
  flags?: Partial<Record<SettingKey | "config", unknown>>;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

export const flagName = (key: string): string => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** The one configuration loader: flags > environment > config file > defaults. */
export function loadConfig(options: LoadConfigOptions = {}): NodeConfig {
  const flags = options.flags ?? {};
  const env = options.env ?? process.env;
  const origins = {} as NodeConfig["origins"];
  const values = {} as Record<SettingKey, unknown>;

  const fromFlagOrEnv = (key: SettingKey | "config", envNames: readonly string[]) => {
    const flag = flags[key];
    if (flag !== undefined && flag !== null) return { raw: flag, origin: { kind: "flag", name: flagName(key) } as Origin };
    for (const name of envNames) {
      const value = env[name];
      if (value !== undefined && value !== "") return { raw: value, origin: { kind: "env", name } as Origin };
    }
    return undefined;
  };

  const home = fromFlagOrEnv("home", SETTINGS.home.env);
  values.home = home ? (parseOrThrow("home", home.raw, home.origin) as string) : SETTINGS.home.default;
  origins.home = home?.origin ?? { kind: "default" };

  const explicitFile = fromFlagOrEnv("config", ["LLMLB_CONFIG"]);
  const configFile = explicitFile
    ? (parseOrThrow("config", explicitFile.raw, explicitFile.origin, parsePath) as string)
    : path.join(values.home as string, "config.json");
  origins.configFile = explicitFile?.origin ?? { kind: "default" };
  const file = readConfigFile(configFile, explicitFile !== undefined);

  for (const key of Object.keys(SETTINGS) as SettingKey[]) {
    if (key === "home") continue;
    const def = SETTINGS[key];
    const given = fromFlagOrEnv(key, def.env);
    if (given) {
      values[key] = parseOrThrow(key, given.raw, given.origin);
      origins[key] = given.origin;
    } else if (file.values[key] !== undefined) {
      const origin: Origin = { kind: "file", name: configFile };
      values[key] = parseOrThrow(key, file.values[key], origin);
      origins[key] = origin;
    } else {
      values[key] = typeof def.default === "function" ? def.default({ home: values.home as string }) : def.default;
      const defaultFile = (def as { defaultFile?: () => string }).defaultFile;
      origins[key] = defaultFile && values[key] ? { kind: "file", name: defaultFile() } : { kind: "default" };
    }
  }
  const settings = values as Settings;
  if (settings.grpcPort !== 0 && settings.grpcPort === settings.httpPort) {
    throw new LlmlbError(
      "INVALID_CONFIG",
      `the gRPC and HTTP listeners are both set to port ${settings.grpcPort} (${originText("grpcPort", origins.grpcPort)}, ${originText("httpPort", origins.httpPort)}): give one of them another port`,
      { setting: "grpcPort" },
    );
  }
  return { ...settings, configFile, sources: file.sources, origins };
}

/** A bad value as the start-up error shows it: a password in a URL is masked. */
const showValue = createRedactor([]);

function originText(key: string, origin: Origin): string {
  return origin.kind === "flag" ? `flag ${origin.name}` : origin.kind === "env" ? `environment variable ${origin.name}` : `"${key}" in ${origin.kind === "file" ? origin.name : "defaults"}`;
}

function parseOrThrow(key: string, raw: unknown, origin: Origin, parse = SETTINGS[key as SettingKey]?.parse): unknown {
  try {
    return parse!(raw);
  } catch (err) {
    const where = originText(key, origin);
    const shown = SETTINGS[key as SettingKey] && "secret" in SETTINGS[key as SettingKey] ? "(hidden)" : showValue(JSON.stringify(raw));
    throw new LlmlbError("INVALID_CONFIG", `invalid ${where} = ${shown}: ${(err as Error).message}`, { setting: key });
  }
}

/** Values as `llmlb-node config` shows them: secrets masked, durations, sizes and "auto" in the notation they are set in. */
export function displayConfig(config: NodeConfig): Record<string, unknown> {
  const out = redactConfig(config);
  for (const [key, value] of Object.entries(out)) {
    const def = SETTINGS[key as SettingKey] as { show?: (value: unknown) => string; secret?: boolean } | undefined;
    if (def?.show && !def.secret) out[key] = def.show(value);
  }
  return out;
}

/** A copy safe to print or log: secrets are masked. */
export function redactConfig(config: NodeConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (key === "origins") continue;
    const def = SETTINGS[key as SettingKey] as { secret?: boolean } | undefined;
    out[key] = def?.secret && value ? "***" : value;
  }
  return out;
}
