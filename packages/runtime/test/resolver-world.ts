/**
 * The test world of the store / resolver / transfer tests: stand-in servers, catalog entries
 * pointing at them, and resolver stacks (store + sources + transfer engine) on temporary homes.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";
import { pino, type Logger } from "pino";
import { afterAll, beforeAll } from "vitest";
import { loadConfig, openResolverStack, staticModelDirectory, type ModelEntry, type ResolveEvent, type ResolverStack } from "../src/index.js";
import { builtinSourceDefaults } from "@llmlb/plugins";
import type { HttpClient } from "../src/transfer/http-client.js";
import { tempDir } from "../../../testkit/node/index.js";
import { describeBytes, tinyModelBytes } from "../../../testkit/gguf/tiny-gguf.js";
import { sizedModelBytes } from "../../../testkit/gguf/sized-gguf.js";
import { startHfStandin, type HfStandin } from "../../../testkit/standins/index.js";

export const TINY = tinyModelBytes();
export const TINY_INFO = describeBytes(TINY);

/** A valid model GGUF of exactly `size` bytes, the rest seeded pseudo-random (incompressible, so byte counts mean something). */
export function payload(size: number, seed = 1): Uint8Array {
  return sizedModelBytes(size, seed);
}

export const sha256 = (data: Uint8Array | Buffer): string => createHash("sha256").update(data).digest("hex");

export function entry(id: string, repo: string, files: string | string[], extra: Partial<ModelEntry> = {}): ModelEntry {
  return {
    id,
    displayName: id,
    description: "",
    repo,
    files: Array.isArray(files) ? files : [files],
    tags: [],
    capabilities: ["text-generation"],
    format: "gguf",
    origin: "supported",
    ...extra,
  };
}

/** Log lines captured as objects. */
export function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: "info" }, sink), lines };
}

export interface StackOptions {
  home?: string;
  env?: Record<string, string>;
  models?: ModelEntry[];
  logger?: Logger;
  /** An HTTP client of the test's own (e.g. with a redirect policy that names a host public). */
  http?: HttpClient;
}

export interface TestStack extends ResolverStack {
  home: string;
  /** Closes the stack and removes the home it created. */
  dispose(): Promise<void>;
}

/** A resolver stack on a temporary (or given) home, reaching only the URLs in env. */
export async function openStack(options: StackOptions = {}): Promise<TestStack> {
  const temp = options.home ? undefined : tempDir("llmlb-resolver-");
  const home = options.home ?? temp!.dir;
  const config = loadConfig({
    env: {
      LLMLB_HOME: home,
      LLMLB_LOG_LEVEL: "silent",
      HF_ENDPOINT: "http://127.0.0.1:9",
      LLMLB_STALL_TIMEOUT: "2",
      LLMLB_PLUGIN_TIMEOUT: "5",
      LLMLB_DISK_RESERVE: "0",
      ...options.env,
    },
  });
  const stack = await openResolverStack({
    config,
    logger: options.logger ?? pino({ level: "silent" }),
    models: staticModelDirectory(options.models ?? []),
    sourceDefaults: builtinSourceDefaults(config),
    ...(options.http ? { http: options.http } : {}),
  });
  return {
    ...stack,
    home,
    async dispose() {
      await stack.close();
      temp?.cleanup();
    },
  };
}

/** Collects a resolve call's events. */
export function recorder(): { events: ResolveEvent[]; onEvent: (e: ResolveEvent) => void } {
  const events: ResolveEvent[] = [];
  return { events, onEvent: (e) => events.push(e) };
}

/** Every path under dir (relative), for "nothing was created there" checks. */
export function listTree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).map((p) => path.normalize(p)).sort();
}

export async function failure(promise: Promise<unknown>): Promise<{ reason: string; code: number; message: string; metadata: Record<string, string> }> {
  try {
    await promise;
  } catch (err) {
    const e = err as { reason: string; code: number; message: string; metadata: Record<string, string> };
    return { reason: e.reason, code: e.code, message: e.message, metadata: e.metadata };
  }
  throw new Error("expected a failure");
}

/**
 * A Hugging Face stand-in for the enclosing describe block (started before its tests, closed after)
 * that hands out a fresh repo holding `files` per call, so byte counters start at zero in each test.
 */
export function hfWorld(prefix: string, files: Record<string, Uint8Array>): { readonly hf: HfStandin; newRepo(): Promise<string> } {
  let hf: HfStandin | undefined;
  let n = 0;
  beforeAll(async () => {
    hf = await startHfStandin();
  });
  afterAll(async () => hf?.close());
  return {
    get hf() {
      return hf!;
    },
    async newRepo() {
      const repo = `${prefix}/repo-${++n}`;
      await hf!.addRepo(repo, { files });
      return repo;
    },
  };
}
