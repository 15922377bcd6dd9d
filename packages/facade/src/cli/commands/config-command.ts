import type { Command } from "commander";
import { displayConfig, redactConfig, type Origin } from "@llmlb/runtime";
import { configOf, wantsJson } from "../command-context.js";
import { printJson, printTable } from "../output.js";

const originText = (o: Origin | undefined) =>
  !o || o.kind === "default" ? "default" : o.kind === "flag" ? `flag ${o.name}` : o.kind === "env" ? `env ${o.name}` : `file ${o.name}`;

/** `config`: the effective configuration and where each value came from. */
export function registerConfigCommand(program: Command): void {
  program
    .command("config")
    .description("print the effective configuration and where each value came from (secrets masked)")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  llmlb-node config --json --grpc-port 50052\n")
    .action((_opts: unknown, command: Command) => {
      const config = configOf(command);
      const json = wantsJson(command);
      // JSON keeps numbers (milliseconds, bytes, 0 for auto); the table shows the setting's own notation.
      const values = json ? redactConfig(config) : displayConfig(config);
      const origins = config.origins as Record<string, Origin | undefined>;
      const rows = Object.entries(values).map(([key, value]) => ({ key, value, source: originText(origins[key]) }));
      if (json) return printJson(Object.fromEntries(rows.map((r) => [r.key, { value: r.value, source: r.source }])));
      printTable(rows.map((r) => ({ ...r, value: typeof r.value === "string" ? r.value : JSON.stringify(r.value) })), ["key", "value", "source"]);
    });
}
