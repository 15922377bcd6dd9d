import fs from "node:fs";
import { Ajv, type ErrorObject } from "ajv";
import { LlmlbError } from "../errors/index.js";
import { SETTINGS } from "./settings.js";

/** One entry of the source chain in config.json. */
export interface SourceEntry {
  /** Package name (e.g. "@llmlb/plugins/huggingface", "my-s3-source") or a file path. */
  module: string;
  /** Overrides the provider's own name (for two instances of one module). */
  name?: string;
  enabled?: boolean;
  /** Lower is tried first; defaults to the provider's own priority. */
  priority?: number;
  /** Handed to the provider as ctx.options. */
  options?: Record<string, unknown>;
}

export interface ConfigFile {
  values: Record<string, unknown>;
  sources?: SourceEntry[];
}

const settingValue = { type: ["string", "number", "boolean", "array"] };

const CONFIG_FILE_SCHEMA = {
  type: "object",
  properties: {
    $schema: { type: "string" },
    ...Object.fromEntries(Object.keys(SETTINGS).filter((k) => k !== "home").map((k) => [k, settingValue])),
    sources: {
      type: "array",
      items: {
        type: "object",
        required: ["module"],
        properties: {
          module: { type: "string", minLength: 1 },
          name: { type: "string", pattern: "^[a-z0-9][a-z0-9._-]*$" },
          enabled: { type: "boolean" },
          priority: { type: "integer" },
          options: { type: "object" },
        },
        additionalProperties: false,
      },
    },
  },
  additionalProperties: false,
} as const;

const validate = new Ajv({ allErrors: true, strict: false }).compile(CONFIG_FILE_SCHEMA);

/** Reads and validates a config file; a missing file is an empty config unless it was asked for explicitly. */
export function readConfigFile(file: string, required: boolean): ConfigFile {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && !required) return { values: {} };
    throw new LlmlbError("INVALID_CONFIG", `cannot read config file ${file}: ${(err as Error).message}`, { file });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new LlmlbError("INVALID_CONFIG", `config file ${file} is not valid JSON: ${(err as Error).message}`, { file });
  }
  if (!validate(data)) {
    throw new LlmlbError("INVALID_CONFIG", `config file ${file}: ${describeAjvErrors(validate.errors ?? [], data)}`, { file });
  }
  const { sources, $schema: _schema, ...values } = data as Record<string, unknown> & { sources?: SourceEntry[] };
  return { values, ...(sources ? { sources } : {}) };
}

/** One line per problem, naming the field (and, for a source, its module) and what was expected. */
export function describeAjvErrors(errors: ErrorObject[], data: unknown): string {
  return errors
    .map((e) => {
      const where = e.instancePath || "(top level)";
      const sourceIndex = /^\/sources\/(\d+)/.exec(e.instancePath)?.[1];
      const source = sourceIndex !== undefined ? sourceModule(data, Number(sourceIndex)) : undefined;
      const subject = source ? `source "${source}" ${where}` : where;
      if (e.keyword === "additionalProperties") {
        return `${subject}: unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"`;
      }
      return `${subject}: ${e.message ?? "is invalid"}`;
    })
    .join("; ");
}

function sourceModule(data: unknown, index: number): string | undefined {
  const sources = (data as { sources?: Array<{ module?: unknown }> }).sources;
  const module = sources?.[index]?.module;
  return typeof module === "string" ? module : `#${index + 1}`;
}
