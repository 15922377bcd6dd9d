import { pino, type Logger, type LevelWithSilent } from "pino";
import type { LogRing } from "./log-ring.js";
import { createRedactor, redactDeep } from "./redact.js";

export type { Logger } from "pino";

export interface LoggerOptions {
  level?: LevelWithSilent;
  format?: "auto" | "json" | "pretty";
  /** Secret values (API keys, tokens) that must never appear in a log line. */
  secrets?: readonly string[];
  /** Where lines go; defaults to stderr so stdout stays free for command output. */
  destination?: NodeJS.WritableStream;
  /** Also keeps the latest lines in memory (served to routers at /v0/logs and /api/logs). */
  ring?: LogRing;
}

/** Structured logs: JSON when not on a terminal, readable on one; secrets redacted everywhere. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const redact = createRedactor(options.secrets ?? []);
  const destination = options.destination ?? process.stderr;
  const pretty =
    options.format === "pretty" ||
    (options.format !== "json" && (destination as { isTTY?: boolean }).isTTY === true);
  const base = {
    level: options.level ?? "info",
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label: string) => ({ level: label }),
      log: (obj: Record<string, unknown>) => redactDeep(obj, redact) as Record<string, unknown>,
    },
    hooks: {
      logMethod(this: Logger, args: unknown[], method: (...a: unknown[]) => void) {
        method.apply(this, args.map((a) => (typeof a === "string" ? redact(a) : a)));
      },
    },
  };
  if (pretty) {
    const transport = pino.transport({
      target: "pino-pretty",
      options: { destination: (destination as { fd?: number }).fd ?? 2, colorize: true, translateTime: "HH:MM:ss.l", ignore: "pid,hostname" },
    });
    return pino(base, withRing(transport, options));
  }
  return pino(base, withRing(destination as pino.DestinationStream, options));
}

function withRing(stream: pino.DestinationStream, options: LoggerOptions): pino.DestinationStream {
  if (!options.ring) return stream;
  const level = options.level === "silent" ? "fatal" : (options.level ?? "info");
  return pino.multistream([
    { stream, level },
    { stream: options.ring.stream, level },
  ]);
}

/** A logger that writes nothing (tests, embedded use). */
export const silentLogger = (): Logger => pino({ level: "silent" });
