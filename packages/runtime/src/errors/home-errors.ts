import { LlmlbError } from "./llmlb-error.js";

/** What every "the home is unusable" message ends with: where the setting comes from and what to do. */
const HOME_HELP = "make it writable by the user running the node, or point LLMLB_HOME (or --home) at a writable directory";

/** The node's home directory (LLMLB_HOME, --home) cannot be created or written. */
export function homeNotWritable(home: string, cause: Error & { code?: unknown }): LlmlbError {
  return new LlmlbError(
    "INVALID_CONFIG",
    `the node's home ${home} cannot be used (${errorText(cause)}): ${HOME_HELP}`,
    { path: home, setting: "LLMLB_HOME", ...(typeof cause.code === "string" ? { errno: cause.code } : {}) },
    { cause },
  );
}

/** `<home>/node.db` cannot be opened for reading and writing (read-only file or directory, not a file, disk full). */
export function nodeDbNotWritable(home: string, file: string, cause: Error & { code?: unknown }): LlmlbError {
  return new LlmlbError(
    "INVALID_CONFIG",
    `the node's database ${file} cannot be opened for writing (${errorText(cause)}); it lives in the node's home ${home}: ${HOME_HELP}`,
    { path: file, setting: "LLMLB_HOME", ...(typeof cause.code === "string" ? { errno: cause.code } : {}) },
    { cause },
  );
}

/** An error's message with its errno code in front (once), as the node's disk errors quote it. */
export function errorText(err: Error & { code?: unknown }): string {
  const message = err.message.trim();
  return typeof err.code === "string" && !message.startsWith(err.code) ? `${err.code}: ${message}` : message;
}
