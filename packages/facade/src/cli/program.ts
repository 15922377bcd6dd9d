import { Command, CommanderError } from "commander";
import { registerServeCommand } from "./serve-command.js";
import { addSettingFlags } from "./setting-flags.js";

/** The llmlb-node command. Exit codes: 0 ok, 1 failure, 2 usage. */
export function createProgram(): Command {
  const program = new Command("llmlb-node")
    .description("llmlb node runtime: model store, resolver and inference over gRPC and HTTP")
    .showHelpAfterError()
    .exitOverride();
  addSettingFlags(program);
  registerServeCommand(program);
  return program;
}

export async function runCli(argv: string[]): Promise<number> {
  const program = createProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") return 0;
      return 2;
    }
    process.stderr.write(`llmlb-node: ${(err as Error).message}\n`);
    return 1;
  }
}
