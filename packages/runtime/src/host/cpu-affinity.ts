import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Parser } from "../config/parse.js";

/** Linux numbers CPUs below its build limit NR_CPUS, at most 8192. */
const MAX_CPU = 8191;

/** A Linux CPU list ("3", "1-3", "0,2,4-7") as CPU numbers, sorted and unique. */
export function expandCpuList(list: string): number[] {
  const cpus = new Set<number>();
  for (const part of list.split(",").map((p) => p.trim())) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!range) throw new Error(`expected CPU numbers and ranges such as 1 or 1-3, comma-separated (got ${JSON.stringify(part)})`);
    const first = Number(range[1]);
    const last = range[2] === undefined ? first : Number(range[2]);
    if (last < first) throw new Error(`the range ${part} ends before it starts`);
    // Checked before the loop below, so a mistyped "0-4000000000" is refused, not enumerated.
    if (last > MAX_CPU) throw new Error(`CPU ${last} is beyond the ${MAX_CPU + 1} CPUs Linux can number`);
    for (let cpu = first; cpu <= last; cpu++) cpus.add(cpu);
  }
  return [...cpus].sort((a, b) => a - b);
}

/** Sorted CPU numbers as a Linux CPU list, runs joined into ranges: [0, 1, 2, 5] → "0-2,5". */
export function formatCpuList(cpus: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; ) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    parts.push(j === i ? String(cpus[i]) : `${cpus[i]}-${cpus[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/** The CPUs this process may run on (its affinity: a container's cpuset, a taskset around the node). */
export function allowedCpus(): number[] {
  try {
    const list = /Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync("/proc/self/status", "utf8"))?.[1];
    if (list) return expandCpuList(list);
  } catch {
    // Not Linux, or no /proc: every CPU the OS reports.
  }
  return Array.from({ length: os.availableParallelism() }, (_, cpu) => cpu);
}

/**
 * The CPUs a process of this node may be pinned to: the container's cpuset (cgroup v2) or the
 * online CPUs, not this process's own affinity (a node pinned to CPU 0 may run its runner on 1).
 */
function usableCpus(): number[] {
  for (const file of ["/sys/fs/cgroup/cpuset.cpus.effective", "/sys/devices/system/cpu/online"]) {
    try {
      const list = fs.readFileSync(file, "utf8").trim();
      if (list) return expandCpuList(list);
    } catch {
      // not there: the next source
    }
  }
  return allowedCpus();
}

/** util-linux's taskset on PATH; throws when there is none. */
function taskset(): string {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter).filter(Boolean)) {
    const file = path.join(dir, "taskset");
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  throw new Error("taskset was not found on PATH; install util-linux or leave LLMLB_RUNNER_CPUS unset");
}

/**
 * LLMLB_RUNNER_CPUS: "" (the runner may run on any CPU) or CPUs this node may use, on Linux with
 * taskset. Checked when the node starts, so a list that cannot be applied fails there, not at the
 * first request.
 */
export const parseRunnerCpus: Parser<string> = (raw) => {
  if (typeof raw !== "string") throw new Error("expected a CPU list such as 1 or 1-3");
  const list = raw.trim();
  if (list === "") return "";
  const cpus = expandCpuList(list);
  if (process.platform !== "linux") throw new Error(`pinning the inference runner to CPUs needs Linux (this is ${process.platform}); leave it unset`);
  const usable = usableCpus();
  const outside = cpus.filter((cpu) => !usable.includes(cpu));
  if (outside.length > 0) {
    const which = outside.length === 1 ? "is not one" : "are not ones";
    throw new Error(`CPU ${formatCpuList(outside)} ${which} this machine lets the node use (${formatCpuList(usable)})`);
  }
  taskset(); // on PATH now, or the node refuses to start
  return cpus.join(",");
};

/** The command that starts node on `cpus` only: taskset in front of node (threads started later inherit it). */
export function pinnedNode(cpus: string): { execPath: string; prefixArgs: string[] } {
  return { execPath: taskset(), prefixArgs: ["--cpu-list", cpus, process.execPath] };
}
