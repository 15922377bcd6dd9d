import { Command, CommanderError, type ErrorOptions } from "commander";
import { errorInfoOf } from "@llmlb/runtime";
import { registerServeCommand } from "./serve-command.js";
import { registerChatCommand } from "./commands/chat-command.js";
import { registerConfigCommand } from "./commands/config-command.js";
import { registerModelCommands } from "./commands/model-commands.js";
import { registerLoadedCommands } from "./commands/loaded-commands.js";
import { registerPullCommand } from "./commands/pull-command.js";
import { registerSourcesCommand } from "./commands/sources-command.js";
import { addSettingFlags } from "./setting-flags.js";

/**
 * A command whose bad flag value is answered with the one line naming the flag and what it
 * expects: the whole help after it (shown after other usage errors) would bury that line.
 */
class CliCommand extends Command {
  override createCommand(name?: string): CliCommand {
    return new CliCommand(name);
  }

  override error(message: string, errorOptions?: ErrorOptions): never {
    if (errorOptions?.code === "commander.invalidArgument") this.showHelpAfterError(false);
    return super.error(message, errorOptions);
  }
}

/** The llmlb-node command. Exit codes: 0 ok, 1 failure, 2 usage. */
export function createProgram(): Command {
  const program = new CliCommand("llmlb-node")
    .description("llmlb node runtime: model store, resolver and inference over gRPC and HTTP")
    .showHelpAfterError()
    .addHelpText("after", "\nExamples:\n  llmlb-node serve\n  llmlb-node pull qwen2.5-0.5b-instruct-q4_k_m\n  llmlb-node ls --json\n\nExit codes: 0 ok, 1 failure, 2 usage, 130 interrupted.\n")
    .exitOverride();
  addSettingFlags(program);
  registerServeCommand(program);
  registerPullCommand(program);
  registerModelCommands(program);
  registerLoadedCommands(program);
  registerSourcesCommand(program);
  registerChatCommand(program);
  registerConfigCommand(program);
  // The setting flags are global and hidden from the help lists: say they exist under each command.
  for (const command of program.commands) {
    command.addHelpText("after", "\nEvery setting is also a flag of every command (e.g. --home, --host, --grpc-port, --http-port, --api-key);\n`llmlb-node config` lists the settings, their values and where each came from.\n");
  }
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
    const info = errorInfoOf(err);
    process.stderr.write(`llmlb-node: ${info.message || (err as Error).message}${info.reason && info.reason !== "UNKNOWN" && info.reason !== "INTERNAL" ? ` (${info.reason})` : ""}\n`);
    return 1;
  }
}
