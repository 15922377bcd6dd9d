import { InvalidArgumentError, Option, type Command } from "commander";
import { ModelState, type Model } from "@llmlb/runtime/gen/llmlb/node/v1/model_pb";
import { CAPABILITY_BY_NAME, CAPABILITY_NAMES, STATE_NAMES, modelJson, stateFromName } from "../../http/v0/model-json.js";
import { withNode, wantsJson } from "../command-context.js";
import { contextLengthFlag } from "../flag-values.js";
import { bytes, printJson, printTable } from "../output.js";

/** ls, info, rm, register: the catalog from the command line. */
export function registerModelCommands(program: Command): void {
  program
    .command("ls")
    .description("list models with their state, size, where they came from and path")
    .addOption(new Option("--state <state>", `only models in this state (${STATE_NAMES.join(", ")})`).argParser(parseState))
    .option("--all", "include models that are not on disk (default: only downloaded or downloading)")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExamples:\n  llmlb-node ls\n  llmlb-node ls --all --json | jq '.[].id'\n")
    .action(async (opts: { state?: ModelState; all?: boolean }, command: Command) => {
      await withNode(command, async ({ clients }) => {
        const models: Model[] = [];
        let pageToken = "";
        do {
          const page = await clients.catalog.listModels({ pageSize: 1000, pageToken });
          models.push(...page.models);
          pageToken = page.nextPageToken;
        } while (pageToken);
        const shown = models
          .filter((m) => (opts.state !== undefined ? m.state === opts.state : opts.all || m.state !== ModelState.AVAILABLE))
          .map(modelJson);
        if (wantsJson(command)) return printJson(shown);
        printTable(
          shown.map((m) => ({
            id: m.id,
            state: m.state === "downloading" && m.progress ? `downloading ${(m.progress.fraction * 100).toFixed(0)}%` : m.state,
            size: bytes(m.local?.size_on_disk_bytes ?? m.size_bytes),
            source: m.local?.source ?? "",
            verified: m.local ? (m.local.verified ? "yes" : "no") : "",
            path: m.local?.path ?? "",
          })),
          ["id", "state", "size", "source", "verified", "path"],
        );
      });
    });

  program
    .command("info <id>")
    .description("show everything known about one model")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  llmlb-node info qwen2.5-0.5b-instruct-q4_k_m\n")
    .action(async (id: string, _opts: unknown, command: Command) => {
      await withNode(command, async ({ clients }) => {
        const { model } = await clients.catalog.getModel({ modelId: id });
        const json = model ? modelJson(model) : undefined;
        if (wantsJson(command) || !json) return printJson(json ?? null);
        const rows: Array<[string, string]> = [
          ["id", json.id], ["name", json.display_name], ["state", json.state], ["repo", json.repo],
          ["files", json.files.join(", ")], ["size", bytes(json.size_bytes)], ["memory", bytes(json.required_memory_bytes)],
          ["quantization", json.quantization ?? ""], ["parameters", json.parameter_count === null ? "" : String(json.parameter_count)], ["tags", json.tags.join(", ")], ["capabilities", json.capabilities.join(", ")],
          ["origin", json.origin], ["path", json.local?.path ?? ""],
          ["verified", json.local ? (json.local.verified ? "yes (sha256 of every file)" : "no (size only)") : ""], ["revision", json.local?.revision ?? json.revision],
          ["downloads", json.hub_info ? String(json.hub_info.downloads) : ""], ["failure", json.failure_reason ?? ""],
          ["unsupported", json.unsupported_reason ?? ""],
        ];
        for (const [k, v] of rows) if (v) process.stdout.write(`${k.padEnd(13)} ${v}\n`);
      });
    });

  program
    .command("rm <id>")
    .description("delete a model's local files (and, with --unregister, a registered model)")
    .option("--unregister", "also remove the registration of a registered model")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  llmlb-node rm qwen2.5-0.5b-instruct-q4_k_m\n")
    .action(async (id: string, opts: { unregister?: boolean }, command: Command) => {
      await withNode(command, async ({ clients }) => {
        const res = await clients.catalog.deleteModel({ modelId: id, removeRegistration: opts.unregister === true });
        if (wantsJson(command)) return printJson({ id, freed_bytes: Number(res.freedBytes) });
        // freed_bytes counts the files and any partial download removed; 0 means there were none.
        const unregistered = opts.unregister === true && !res.model;
        if (res.freedBytes > 0n) process.stdout.write(`deleted ${id} (${bytes(res.freedBytes)} freed)${unregistered ? " and removed its registration" : ""}\n`);
        else if (unregistered) process.stdout.write(`removed the registration of ${id} (it had no files on disk)\n`);
        else process.stdout.write(`nothing to delete: ${id} has no files on disk\n`);
      });
    });

  program
    .command("register <repo>")
    .description("add a Hugging Face model by repo id or URL (metadata only; pull downloads it)")
    .option("--file <name>", "GGUF file inside the repo (default: a sensible quantization)")
    .option("--name <display name>", "display name")
    .option("--id <id>", "id to register under")
    .option("--context-length <tokens>", "tokens per request for this model (default: the node's LLMLB_CONTEXT_SIZE)", contextLengthFlag)
    .option("--capability <name>", `what the model does, repeatable: ${CAPABILITY_NAMES.join(", ")} (default: from the repo's pipeline_tag on the Hub, else text-generation)`, capabilityFlag)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExamples:\n  llmlb-node register Qwen/Qwen2.5-0.5B-Instruct-GGUF\n  llmlb-node register https://huggingface.co/org/repo/blob/main/model-Q4_K_M.gguf\n  llmlb-node register org/bge-reranker-v2-m3-GGUF --capability rerank\n")
    .action(async (repo: string, opts: { file?: string; name?: string; id?: string; contextLength?: number; capability?: Array<keyof typeof CAPABILITY_BY_NAME> }, command: Command) => {
      const contextLength = opts.contextLength ?? 0;
      const capabilities = (opts.capability ?? []).map((name) => CAPABILITY_BY_NAME[name]);
      await withNode(command, async ({ clients }) => {
        const res = await clients.catalog.registerModel({ repo, filename: opts.file ?? "", displayName: opts.name ?? "", id: opts.id ?? "", contextLength, capabilities });
        if (wantsJson(command)) return printJson({ model: res.model ? modelJson(res.model) : null, warnings: res.warnings });
        process.stdout.write(`registered ${res.model?.id ?? repo}\n`);
        for (const warning of res.warnings) process.stderr.write(`warning: ${warning}\n`);
      });
    });
}

/** One more --capability value; anything but a capability this node serves is a usage error naming them. */
function capabilityFlag(value: string, previous: Array<keyof typeof CAPABILITY_BY_NAME> = []): Array<keyof typeof CAPABILITY_BY_NAME> {
  const name = value.toLowerCase();
  if (!(CAPABILITY_NAMES as string[]).includes(name)) throw new InvalidArgumentError(`expected one of ${CAPABILITY_NAMES.join(", ")}`);
  return [...previous, name as keyof typeof CAPABILITY_BY_NAME];
}

/** A --state value, in any case; anything else is a usage error listing the states. */
function parseState(value: string): ModelState {
  const state = stateFromName(value);
  if (state === undefined) throw new InvalidArgumentError(`expected one of ${STATE_NAMES.join(", ")}`);
  return state;
}
