import { Option, type Command } from "commander";
import { SETTINGS, type SettingKey } from "@llmlb/runtime";

export type GlobalFlags = Partial<Record<SettingKey | "config" | "json", unknown>>;

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Adds one global flag per setting (e.g. --grpc-port, --hf-endpoint) plus --config. */
export function addSettingFlags(program: Command): void {
  program.addOption(new Option("--config <file>", "config file (default <home>/config.json; env LLMLB_CONFIG)"));
  for (const [key, def] of Object.entries(SETTINGS)) {
    const env = def.env.join(", ");
    program.addOption(new Option(`--${kebab(key)} <value>`, `${def.description} (env ${env})`).hideHelp(key !== "home"));
  }
}

/** The setting values given as flags, keyed as loadConfig expects. */
export function settingFlags(opts: GlobalFlags): GlobalFlags {
  const flags: GlobalFlags = {};
  for (const key of [...Object.keys(SETTINGS), "config"] as Array<SettingKey | "config">) {
    if (opts[key] !== undefined) flags[key] = opts[key];
  }
  return flags;
}
