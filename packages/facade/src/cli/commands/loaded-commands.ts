import type { Command } from "commander";
import { loadedModelJson } from "../../http/v0/model-json.js";
import { configOf, wantsJson } from "../command-context.js";
import { connectToNode, type NodeConnection } from "../node-connection.js";
import { bytes, duration, printJson, printTable } from "../output.js";

/** ps, load, unload: what the running node holds in memory. */
export function registerLoadedCommands(program: Command): void {
  program
    .command("ps")
    .description("list the models the running node holds in memory")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  llmlb-node ps\n")
    .action(async (_opts: unknown, command: Command) => {
      await withRunningNode(command, async ({ clients }) => {
        const res = await clients.inference.listLoadedModels({});
        const models = res.models.map(loadedModelJson);
        if (wantsJson(command)) return printJson({ models, memory_budget_bytes: Number(res.memoryBudgetBytes) });
        if (models.length === 0) {
          process.stdout.write(`no model is loaded (memory budget ${bytes(res.memoryBudgetBytes)}); models load on their first request or with llmlb-node load <id>\n`);
          return;
        }
        printTable(models.map(psRow), ["id", "memory", "context", "slots", "queued", "expires"]);
        const used = models.reduce((sum, m) => sum + m.memory_bytes, 0);
        process.stdout.write(`${bytes(used)} of ${bytes(res.memoryBudgetBytes)} budget in use\n`);
      });
    });

  program
    .command("load <id>")
    .description("load a model into the running node's memory ahead of requests (--keep-alive <duration>: how long it stays once idle; -1 keeps it)")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExamples:\n  llmlb-node load qwen2.5-0.5b-instruct-q4_k_m\n  llmlb-node load qwen2.5-0.5b-instruct-q4_k_m --keep-alive -1\n")
    .action(async (id: string, _opts: unknown, command: Command) => {
      // --keep-alive is the global LLMLB_KEEP_ALIVE flag; given here, it is this model's keep-alive.
      const keepAlive = command.optsWithGlobals<{ keepAlive?: unknown }>().keepAlive;
      await withRunningNode(command, async ({ clients }) => {
        const res = await clients.inference.loadModel({ modelId: id, ...(keepAlive !== undefined ? { keepAlive: String(keepAlive) } : {}) });
        const model = res.model ? loadedModelJson(res.model) : null;
        if (wantsJson(command) || !model) return printJson(model);
        process.stdout.write(`loaded ${id} (${bytes(model.memory_bytes)}, context ${model.context_length} tokens, ${model.parallel_slots} slots)\n`);
      });
    });

  program
    .command("unload <id>")
    .description("unload an idle model from the running node's memory")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  llmlb-node unload qwen2.5-0.5b-instruct-q4_k_m\n")
    .action(async (id: string, _opts: unknown, command: Command) => {
      await withRunningNode(command, async ({ clients }) => {
        const { unloaded } = await clients.inference.unloadModel({ modelId: id });
        if (wantsJson(command)) return printJson({ id, unloaded });
        process.stdout.write(unloaded ? `unloaded ${id}\n` : `${id} was not loaded\n`);
      });
    });
}

function psRow(m: ReturnType<typeof loadedModelJson>): Record<string, string> {
  const expires = m.expires_at ? duration((Date.parse(m.expires_at) - Date.now()) / 1000) : m.active_requests > 0 ? "serving" : "never";
  return {
    id: m.id,
    memory: bytes(m.memory_bytes),
    context: String(m.context_length),
    slots: `${m.active_requests}/${m.parallel_slots}`,
    queued: String(m.queued_requests),
    expires,
  };
}

/** Memory belongs to a running node: these commands never start one of their own. */
async function withRunningNode(command: Command, body: (connection: NodeConnection) => Promise<void>): Promise<void> {
  const config = configOf(command);
  const connection = await connectToNode(config, { localFallback: false });
  try {
    await body(connection);
  } finally {
    await connection.close();
  }
}
