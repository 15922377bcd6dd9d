import type { Logger } from "../logging/index.js";
import type { KvNamespace } from "../state/shared-kv.js";
import type { ModelEntry } from "./model-entry.js";

/** A registered model as persisted. */
export interface RegistrationRecord {
  entry: ModelEntry;
  /** Epoch milliseconds; ListModels shows registered models in this order. */
  registeredAt: number;
}

/** Registrations in the state store (their own namespace), keyed by model id. */
export class RegistrationStore {
  private readonly warned = new Set<string>();

  constructor(
    private readonly kv: KvNamespace<RegistrationRecord>,
    private readonly logger: Logger,
  ) {}

  /** Every registration, oldest first. Malformed records are skipped with a warning. */
  async loadAll(): Promise<RegistrationRecord[]> {
    return (await this.load()).records;
  }

  /**
   * Every registration, oldest first; `complete` is false when the fleet's shared store could not
   * be asked (the records are this node's copy only).
   */
  async load(): Promise<{ records: RegistrationRecord[]; complete: boolean }> {
    const { entries, complete } = await this.kv.entries();
    const records: RegistrationRecord[] = [];
    for (const [key, value] of entries) {
      if (isRecord(value) && value.entry.id === key) records.push(value);
      else if (!this.warned.has(key)) {
        this.warned.add(key);
        this.logger.warn({ key }, "ignoring a malformed model registration in the state store");
      }
    }
    return { records: records.sort((a, b) => a.registeredAt - b.registeredAt), complete };
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
