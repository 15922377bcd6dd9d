import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

/**
 * A small disk of its own for a child process, without privileges: the child runs in new user
 * and mount namespaces (`unshare -Urm`) with a tmpfs of `sizeMiB` mounted over `dir`, so the
 * kernel itself says ENOSPC when it fills and EROFS once it is remounted read-only. Only the child
 * (and what `inNamespace` runs) sees that tmpfs; this process sees `dir` empty.
 */
export interface SmallDisk {
  dir: string;
  /** The command line that runs `argv` on the small disk. */
  launcher(argv: string[]): string[];
  /** Runs a shell command in the namespaces of `pid` (a process started with `launcher`); returns its stdout. */
  inNamespace(pid: number, command: string): string;
}

/** Whether this machine lets a process mount a tmpfs in namespaces of its own (root, or unprivileged user namespaces). */
export function smallDisksWork(): boolean {
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), "llmlb-small-disk-probe-"));
  try {
    return spawnSync("unshare", ["-Urm", "sh", "-c", 'mount -t tmpfs -o size=1m tmpfs "$0"', probe], { stdio: "ignore" }).status === 0;
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
}

export function smallDisk(dir: string, sizeMiB: number): SmallDisk {
  return {
    dir,
    launcher: (argv) => ["unshare", "-Urm", "sh", "-c", `mount -t tmpfs -o size=${sizeMiB}m tmpfs "$0" && exec "$@"`, dir, ...argv],
    inNamespace: (pid, command) =>
      execFileSync("nsenter", ["-t", String(pid), "-U", "-m", "--preserve-credentials", "sh", "-c", command], { encoding: "utf8" }),
  };
}

/** A shell command that fills the disk holding `dir` to its last byte (a file named `filler` there). */
export const fillDisk = (dir: string) => `dd if=/dev/zero of='${dir}/filler' bs=64k 2>/dev/null; dd if=/dev/zero of='${dir}/filler-tail' bs=512 2>/dev/null; true`;
