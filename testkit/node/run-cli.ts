import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "../..");

/** `llmlb-node` from the sources, as `node <args>` runs it (tsx, the source condition). */
export const CLI_ARGS = ["--conditions=source", "--import", "tsx", path.join(root, "packages/facade/src/cli.ts")];

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `llmlb-node <args>` in a child process with `env` over this process's environment and
 * collects its output; `onStderr` sees the whole stderr so far (and the child) at every chunk.
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv, options: { onStderr?: (text: string, child: ChildProcess) => void } = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...CLI_ARGS, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      options.onStderr?.(stderr, child);
    });
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
