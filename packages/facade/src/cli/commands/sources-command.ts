import type { Command } from "commander";
import { ArtifactKind } from "@llmlb/runtime/gen/llmlb/node/v1/model_pb";
import { withNode, wantsJson } from "../command-context.js";
import { printJson, printTable } from "../output.js";

/** `sources`: the effective source chain, in the order it is tried. */
export function registerSourcesCommand(program: Command): void {
  program
    .command("sources")
    .description("show the model sources in the order they are tried")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  llmlb-node sources --json\n")
    .action(async (_opts: unknown, command: Command) => {
      await withNode(command, async ({ clients }) => {
        const { sources } = await clients.resolver.listSources({});
        const rows = sources.map((s) => ({
          name: s.name,
          priority: s.priority,
          enabled: s.enabled,
          kinds: s.kinds.map((k) => ArtifactKind[k]!.toLowerCase()),
          module: s.module,
        }));
        if (wantsJson(command)) return printJson(rows);
        printTable(rows.map((r) => ({ ...r, priority: String(r.priority), enabled: r.enabled ? "yes" : "no", kinds: r.kinds.join(",") })), ["name", "priority", "enabled", "kinds", "module"]);
      });
    });
}
