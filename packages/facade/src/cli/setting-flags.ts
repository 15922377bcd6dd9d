import { Option, type Command } from "commander";
import { SETTINGS, type SettingKey } from "@llmlb/runtime";
import { flagValue } from "./flag-values.js";

export type GlobalFlags = Partial<Record<SettingKey | "config" | "json", unknown>>;

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * Adds one global flag per setting (e.g. --grpc-port, --hf-endpoint, --keep-alive) plus --config.
 * A value the setting's own parser refuses is a usage error while the command line is parsed; the
 * flag keeps the text given, which loadConfig reads. Secrets are left to loadConfig, which does
 * not print them back.
 */
export function addSettingFlags(program: Command): void {
  program.addOption(new Option("--config <file>", "config file (default <home>/config.json; env LLMLB_CONFIG)"));
  for (const [key, def] of Object.entries(SETTINGS)) {
    const env = def.env.join(", ");
    const option = new Option(`--${kebab(key)} <value>`, `${def.description} (env ${env})`).hideHelp(key !== "home");
    if (!("secret" in def)) {
      const parse = def.parse as (raw: unknown) => unknown;
      option.argParser(flagValue((raw) => (parse(raw), raw)));
    }
    program.addOption(option);
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
