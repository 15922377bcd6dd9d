import type Keyv from "keyv";
import type { Logger } from "../logging/index.js";
import type { ModelEntry } from "./model-entry.js";

/** A registered model as persisted. */
export interface RegistrationRecord {
  entry: ModelEntry;
  /** Epoch milliseconds; ListModels shows registered models in this order. */
  registeredAt: number;
}

/** Registrations in keyv (their own namespace of <home>/node.db), keyed by model id. */
export class RegistrationStore {
  constructor(
    private readonly kv: Keyv<RegistrationRecord>,
    private readonly logger: Logger,
  ) {}

  /** Every registration, oldest first. Malformed records are skipped with a warning. */
  async loadAll(): Promise<RegistrationRecord[]> {
    const records: RegistrationRecord[] = [];
    if (!this.kv.iterator) return records;
    for await (const [key, value] of this.kv.iterator(this.kv.namespace)) {
      if (isRecord(value) && value.entry.id === key) records.push(value);
      else this.logger.warn({ key }, "ignoring a malformed model registration in node.db");
    }
    return records.sort((a, b) => a.registeredAt - b.registeredAt);
  }

  async add(record: RegistrationRecord): Promise<void> {
    await this.kv.set(record.entry.id, record);
  }

  async remove(id: string): Promise<boolean> {
    return this.kv.delete(id);
  }
}

function isRecord(value: unknown): value is RegistrationRecord {
  if (typeof value !== "object" || value === null) return false;
  const { entry, registeredAt } = value as Partial<RegistrationRecord>;
  return (
    typeof registeredAt === "number" &&
    typeof entry === "object" &&
    entry !== null &&
    typeof entry.id === "string" &&
    typeof entry.repo === "string" &&
    Array.isArray(entry.files) &&
    entry.files.length > 0 &&
    entry.origin === "registered"
  );
}
