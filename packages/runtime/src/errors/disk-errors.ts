import { LlmlbError } from "./llmlb-error.js";

/** Another live process has held the disk reservations' mutex for longer than any update takes. */
export function reservationsLockTimeout(mutex: string, holder: { pid: number; host: string }): LlmlbError {
  return new LlmlbError(
    "LOCK_WAIT_TIMEOUT",
    `gave up waiting for the disk reservations lock ${mutex}: process ${holder.pid} on ${holder.host} holds it; ` +
      "if that process is stuck, stop it (a dead holder's lock is taken over), then try again",
    { holder_pid: String(holder.pid), holder_host: holder.host },
  );
}

/** A write of a download failed with ENOSPC or EDQUOT: the disk filled up after the free-space check. */
export function diskFilledUp(err: Error): LlmlbError {
  return new LlmlbError("INSUFFICIENT_DISK", `the disk filled up while downloading: ${err.message}`);
}
