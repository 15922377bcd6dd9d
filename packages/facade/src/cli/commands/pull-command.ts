import type { Command } from "commander";
import cliProgress from "cli-progress";
import { LlmlbError, isAbortError, errorInfoOf } from "@llmlb/runtime";
import { Code } from "@connectrpc/connect";
import { withNode, wantsJson } from "../command-context.js";
import { explainFailure, type NodeConnection } from "../node-connection.js";
import type { ResolveDone } from "@llmlb/runtime/gen/llmlb/node/v1/resolver_pb";
import { bytes, duration, printJson } from "../output.js";

/** Exit status of a pull the user interrupted (128 + SIGINT), as shells expect. */
export const EXIT_INTERRUPTED = 130;

/** A progress display: a live bar on a terminal, plain lines every 10% when piped. */
function progressDisplay(tty: boolean) {
  let bar: cliProgress.SingleBar | undefined;
  let lastDecile = -1;
  return {
    update(p: { fraction: number; completedBytes: bigint; totalBytes: bigint; currentFile: string; bytesPerSecond: number }) {
      const total = Number(p.totalBytes);
      const done = Number(p.completedBytes);
      const eta = p.bytesPerSecond > 0 ? (total - done) / p.bytesPerSecond : Number.NaN;
      const payload = { file: p.currentFile, done: bytes(done), size: bytes(total), speed: `${bytes(p.bytesPerSecond)}/s`, remaining: duration(eta) };
      if (tty) {
        bar ??= new cliProgress.SingleBar(
          { format: "{file} |{bar}| {percentage}% {done}/{size} {speed} {remaining} left", hideCursor: true, clearOnComplete: false, stream: process.stderr },
          cliProgress.Presets.shades_classic,
        );
        if (!bar.isActive) bar.start(Math.max(total, 1), done, payload);
        bar.setTotal(Math.max(total, 1));
        bar.update(done, payload);
        return;
      }
      const decile = Math.floor(p.fraction * 10);
      if (decile > lastDecile) {
        lastDecile = decile;
        process.stderr.write(`progress ${Math.round(p.fraction * 100)}% ${payload.done}/${payload.size} ${payload.speed} ${payload.remaining} left\n`);
      }
    },
    stop() {
      bar?.stop();
    },
  };
}

type ResolveTarget = { case: "modelId"; value: string } | { case: "adapterRef"; value: string };

/**
 * Resolves a model or adapter through the node, showing what it does on stderr: the download's
 * progress, each source that fails, a wait on another process's download (and, with
 * `announceSources`, each source asked). Ctrl-C cancels: the download's partial file stays, the
 * command exits 130 saying that running `command` (pull, chat) again resumes it, and undefined
 * is returned. A resolution cut off because the node stopped (or can no longer be reached) fails
 * with one line saying so, and that the same command resumes the download.
 */
export async function resolveShowingProgress(
  connection: NodeConnection,
  target: ResolveTarget,
  options: { command: "pull" | "chat"; announceSources: boolean; json?: boolean },
): Promise<ResolveDone | undefined> {
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once("SIGINT", onSigint);
  const display = progressDisplay(process.stderr.isTTY === true && options.json !== true);
  try {
    let done: ResolveDone | undefined;
    for await (const res of connection.clients.resolver.resolve({ target }, { signal: controller.signal })) {
      const event = res.event;
      if (event.case === "progress") display.update(event.value);
      else if (event.case === "sourceTried" && options.announceSources) process.stderr.write(`trying ${event.value.source}\n`);
      else if (event.case === "sourceFailed") process.stderr.write(`${event.value.source}: ${event.value.reason}\n`);
      else if (event.case === "lockWait") process.stderr.write(`waiting for pid ${event.value.holderPid} on ${event.value.holderHost}, which is downloading it\n`);
      else if (event.case === "done") done = event.value;
    }
    display.stop();
    if (!done) throw new LlmlbError("INTERNAL", `the node ended the resolution of ${target.value} without an answer`);
    return done;
  } catch (err) {
    display.stop();
    if (controller.signal.aborted && (isAbortError(err) || errorInfoOf(err).code === Code.Canceled)) {
      process.stderr.write(`\ncancelled; the partial download is kept: run the same ${options.command} again to resume it\n`);
      process.exitCode = EXIT_INTERRUPTED;
      return undefined;
    }
    throw await explainFailure(connection, err, `run the same ${options.command} again to resume the download`);
  } finally {
    process.off("SIGINT", onSigint);
  }
}

/** `pull <id>`: resolves a model (or an adapter reference) and shows the download. */
export function registerPullCommand(program: Command): void {
  program
    .command("pull <id>")
    .description("download a model (or a LoRA adapter with --adapter) into the store, with progress")
    .option("--adapter", "treat <id> as an adapter reference (github:owner/repo@tag/asset, hf:org/repo/file.gguf, a path)")
    .option("--json", "print the result as JSON")
    .addHelpText("after", "\nCtrl-C cancels; running the same pull again resumes where it stopped.\n\nExamples:\n  llmlb-node pull qwen2.5-0.5b-instruct-q4_k_m\n  llmlb-node pull --adapter github:acme/adapters@v1/style.gguf\n")
    .action(async (id: string, opts: { adapter?: boolean }, command: Command) => {
      await withNode(command, async (connection) => {
        const target = opts.adapter ? { case: "adapterRef" as const, value: id } : { case: "modelId" as const, value: id };
        const done = await resolveShowingProgress(connection, target, { command: "pull", announceSources: true, json: wantsJson(command) });
        if (!done) return;
        if (wantsJson(command)) printJson({ id: done.id, path: done.path, source: done.source, size_bytes: Number(done.sizeBytes), sha256: done.sha256 });
        else process.stdout.write(`${done.id} ready at ${done.path} (from ${done.source}, ${bytes(done.sizeBytes)})\n`);
      });
    });
}
