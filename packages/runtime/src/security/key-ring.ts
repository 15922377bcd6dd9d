import { createHash, timingSafeEqual } from "node:crypto";
import fs from "node:fs";
import { LlmlbError } from "../errors/index.js";
import { SCOPES, type Scope } from "./access-policy.js";

export interface ApiKey {
  /** Names the key in logs and metrics; the key itself is never printed. */
  label: string;
  scope: Scope;
  sha256: Buffer;
}

export type Authentication =
  | { kind: "disabled" }
  | { kind: "missing" }
  | { kind: "invalid" }
  | { kind: "key"; key: ApiKey };

const sha256 = (text: string) => createHash("sha256").update(text).digest();

function keysFileError(file: string, problem: string): LlmlbError {
  return new LlmlbError("INVALID_CONFIG", `API keys file ${file}: ${problem}. Expected a JSON array of {"label", "key" or "sha256", "scope": "inference" | "read" | "admin"}`, { file });
}

/**
 * Where JSON.parse stopped, as line and column, when its message says: never the message itself,
 * which quotes the text around the error — here, someone's key.
 */
function syntaxErrorPlace(text: string, err: Error): string {
  const at = /at position (\d+)/.exec(err.message);
  if (!at) return "";
  const before = text.slice(0, Number(at[1]));
  const line = before.split("\n").length;
  return ` at line ${line}, column ${before.length - before.lastIndexOf("\n")}`;
}

/** Parses the keys file (LLMLB_API_KEYS_FILE): a JSON array of {label, key | sha256, scope}. */
export function parseKeysFile(file: string, text: string): ApiKey[] {
  let entries: unknown;
  try {
    entries = JSON.parse(text);
  } catch (err) {
    throw keysFileError(file, `not valid JSON${syntaxErrorPlace(text, err as Error)}`);
  }
  if (!Array.isArray(entries)) throw keysFileError(file, "the top level is not an array");
  const labels = new Set<string>();
  return entries.map((entry: unknown, i): ApiKey => {
    const at = `entry ${i + 1}`;
    if (typeof entry !== "object" || entry === null) throw keysFileError(file, `${at} is not an object`);
    const { label, key, sha256: digest, scope, ...rest } = entry as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length) throw keysFileError(file, `${at} has unknown field(s) ${unknown.join(", ")}`);
    if (typeof label !== "string" || !/^[\w.@-]{1,64}$/.test(label)) throw keysFileError(file, `${at}: "label" must be 1-64 letters, digits, '.', '-', '_' or '@'`);
    if (labels.has(label)) throw keysFileError(file, `${at}: label "${label}" is used twice`);
    labels.add(label);
    if (!SCOPES.includes(scope as Scope)) throw keysFileError(file, `${at} ("${label}"): "scope" must be "inference", "read" or "admin"`);
    if ((key === undefined) === (digest === undefined)) throw keysFileError(file, `${at} ("${label}"): give exactly one of "key" and "sha256"`);
    if (key !== undefined && (typeof key !== "string" || key.length < 16)) throw keysFileError(file, `${at} ("${label}"): "key" must be a string of at least 16 characters`);
    if (digest !== undefined && (typeof digest !== "string" || !/^[0-9a-fA-F]{64}$/.test(digest))) throw keysFileError(file, `${at} ("${label}"): "sha256" must be 64 hex digits`);
    return { label, scope: scope as Scope, sha256: typeof key === "string" ? sha256(key) : Buffer.from(digest as string, "hex") };
  });
}

/**
 * The node's API keys: LLMLB_API_KEY (label "default", admin) plus the keys file. With neither,
 * authentication is off. reload() re-reads the file and keeps the old keys if the new file is bad.
 */
export class KeyRing {
  private keys: ApiKey[] = [];

  constructor(
    private readonly apiKey: string,
    private readonly keysFile: string,
  ) {
    this.keys = this.read();
  }

  get enabled(): boolean {
    return this.keys.length > 0 || Boolean(this.keysFile);
  }

  get labels(): string[] {
    return this.keys.map((k) => `${k.label} (${k.scope})`);
  }

  /** Re-reads the keys file; throws (keeping the current keys) when it is missing or invalid. */
  reload(): void {
    this.keys = this.read();
  }

  authenticate(authorization: string | null | undefined): Authentication {
    if (!this.enabled) return { kind: "disabled" };
    const match = /^Bearer\s+(\S+)$/i.exec(authorization?.trim() ?? "");
    if (!authorization) return { kind: "missing" };
    if (!match?.[1]) return { kind: "invalid" };
    const given = sha256(match[1]);
    let found: ApiKey | undefined;
    // Compare against every key so the time taken does not say which one nearly matched.
    for (const key of this.keys) if (timingSafeEqual(given, key.sha256) && !found) found = key;
    return found ? { kind: "key", key: found } : { kind: "invalid" };
  }

  private read(): ApiKey[] {
    const keys: ApiKey[] = this.apiKey ? [{ label: "default", scope: "admin", sha256: sha256(this.apiKey) }] : [];
    if (!this.keysFile) return keys;
    let text: string;
    try {
      text = fs.readFileSync(this.keysFile, "utf8");
    } catch (err) {
      throw keysFileError(this.keysFile, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    const fromFile = parseKeysFile(this.keysFile, text);
    if (this.apiKey && fromFile.some((k) => k.label === "default")) throw keysFileError(this.keysFile, 'the label "default" is LLMLB_API_KEY\'s; pick another');
    return [...keys, ...fromFile];
  }
}
