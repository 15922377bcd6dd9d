import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import readline from "node:readline";
import type { ModelEntry, ResolveEvent, ResolveResult } from "../src/index.js";

const root = path.resolve(import.meta.dirname, "../../..");
const fixture = path.join(import.meta.dirname, "fixtures", "resolve-child.ts");

export type ChildLine =
  | { ready: number }
  | { event: ResolveEvent }
  | { done: ResolveResult }
  | { error: { reason: string; message: string } };

export interface ResolveChild {
  process: ChildProcess;
  lines: ChildLine[];
  /** Resolves with the first line matching, rejects when the child exits first. */
  waitFor(match: (line: ChildLine) => boolean, timeoutMs?: number): Promise<ChildLine>;
  exited: Promise<number | null>;
  kill9(): Promise<void>;
}

/** Another process resolving a model on the same home (the source-condition build, through tsx). */
export function spawnResolveChild(job: { home: string; env: Record<string, string>; models: ModelEntry[]; modelId: string }): ResolveChild {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", fixture, JSON.stringify(job)], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: ChildLine[] = [];
  const waiters = new Set<() => void>();
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  readline.createInterface({ input: child.stdout! }).on("line", (text) => {
    try {
      lines.push(JSON.parse(text) as ChildLine);
    } catch {
      return;
    }
    for (const w of waiters) w();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => {
    resolve(code);
    for (const w of waiters) w();
  }));
  return {
    process: child,
    lines,
    exited,
    waitFor(match, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`child: timed out; lines ${JSON.stringify(lines).slice(0, 2000)} stderr ${stderr.slice(0, 2000)}`)), timeoutMs);
        const check = () => {
          const hit = lines.find(match);
          if (hit) done(undefined, hit);
          else if (child.exitCode !== null || child.signalCode !== null) done(new Error(`child exited (${child.exitCode ?? child.signalCode}): ${stderr.slice(0, 2000)}`));
        };
        const done = (err?: Error, line?: ChildLine) => {
          clearTimeout(timer);
          waiters.delete(check);
          if (err) reject(err);
          else resolve(line!);
        };
        waiters.add(check);
        check();
      });
    },
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}
