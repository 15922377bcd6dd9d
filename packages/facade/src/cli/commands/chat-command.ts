import readline from "node:readline/promises";
import type { Command } from "commander";
import { withNode } from "../command-context.js";
import { maxTokensFlag, seedFlag, temperatureFlag } from "../flag-values.js";
import { explainFailure } from "../node-connection.js";
import { EXIT_INTERRUPTED, resolveShowingProgress } from "./pull-command.js";

/** `chat <id>`: an interactive, streamed conversation (reads one message per line when piped). */
export function registerChatCommand(program: Command): void {
  program
    .command("chat <id>")
    .description("chat with a model, streamed (the model is pulled first if needed)")
    .option("--system <text>", "system prompt")
    .option("--max-tokens <n>", "tokens per answer", maxTokensFlag)
    .option("--temperature <t>", "sampling temperature from 0 (greedy) to 2", temperatureFlag)
    .option("--seed <n>", "sampling seed", seedFlag)
    .addHelpText("after", "\nType /exit or Ctrl-D to leave. Ctrl-C stops an answer (piped: ends the chat); during the model's download it cancels the download, and the same chat again resumes it.\n\nExamples:\n  llmlb-node chat qwen2.5-0.5b-instruct-q4_k_m\n  echo 'Hello' | llmlb-node chat qwen2.5-0.5b-instruct-q4_k_m --max-tokens 32\n")
    .action(async (id: string, opts: { system?: string; maxTokens?: number; temperature?: number; seed?: number }, command: Command) => {
      await withNode(command, async (connection) => {
        const { clients } = connection;
        // Before any input: a mistyped id fails now, and a model not on disk yet
        // downloads with its progress shown instead of silently holding the first answer.
        if (!(await resolveShowingProgress(connection, { case: "modelId", value: id }, { command: "chat", announceSources: false }))) return;
        const messages: Array<{ role: string; content: string }> = opts.system ? [{ role: "system", content: opts.system }] : [];
        const interactive = process.stdin.isTTY === true;
        const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: interactive });
        // On a terminal readline takes Ctrl-C itself: it stops the answer being written, or leaves at the prompt.
        let answering: AbortController | undefined;
        rl.on("SIGINT", () => (answering ? answering.abort() : rl.close()));
        try {
          if (interactive) rl.setPrompt("> ");
          if (interactive) rl.prompt();
          for await (const line of rl) {
            const text = line.trim();
            if (text === "/exit") break;
            if (!text) {
              if (interactive) rl.prompt();
              continue;
            }
            messages.push({ role: "user", content: text });
            const controller = new AbortController();
            answering = controller;
            const onSigint = () => controller.abort();
            process.once("SIGINT", onSigint);
            let answer = "";
            try {
              for await (const res of clients.inference.chat(
                { modelId: id, messages, maxTokens: opts.maxTokens, temperature: opts.temperature, seed: opts.seed },
                { signal: controller.signal },
              )) {
                answer += res.delta;
                process.stdout.write(res.delta);
              }
            } catch (err) {
              if (!controller.signal.aborted) throw await explainFailure(connection, err, "the answer was cut off; start the node and chat again");
              // Ctrl-C stops the answer: at the prompt the conversation goes on (with what was said so far); piped, the chat ends.
              process.stdout.write(interactive ? " [stopped]" : "\n");
              if (!interactive) {
                process.exitCode = EXIT_INTERRUPTED;
                break;
              }
            } finally {
              answering = undefined;
              process.off("SIGINT", onSigint);
            }
            process.stdout.write("\n");
            messages.push({ role: "assistant", content: answer });
            if (interactive) rl.prompt();
          }
        } finally {
          rl.close();
        }
      });
    });
}
