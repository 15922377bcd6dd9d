import type { Logger } from "../logging/index.js";
import type { KvNamespace } from "../state/shared-kv.js";
import type { RegistrationBackup } from "./registration-backup.js";
import { isRegistrationRecord, type RegistrationRecord } from "./registration-record.js";

export type { RegistrationRecord } from "./registration-record.js";

/** Registrations in the state store (their own namespace), keyed by model id. */
export class RegistrationStore {
  private readonly warned = new Set<string>();

  constructor(
    private readonly kv: KvNamespace<RegistrationRecord>,
    private readonly logger: Logger,
    /** Kept in step with every change; see RegistrationBackup. */
    private readonly backup?: RegistrationBackup,
  ) {}

  /**
   * Takes back the registrations a rebuilt node.db lost from the backup (those it does not hold),
   * then names the current node.db in the backup.
   */
  async restoreFromBackup(): Promise<void> {
    if (!this.backup) return;
    const lost = await this.backup.fromAnotherNodeDb();
    const held = await this.loadAll();
    const heldIds = new Set(held.map((r) => r.entry.id));
    const missing = lost.filter((r) => !heldIds.has(r.entry.id));
    for (const record of missing) await this.kv.set(record.entry.id, record);
    if (missing.length > 0) {
      this.logger.warn({ file: this.backup.file, ids: missing.map((r) => r.entry.id) }, `restored ${missing.length} model registrations from ${this.backup.file} (node.db was rebuilt)`);
    }
    await this.backup.save(byRegistration([...held, ...missing]));
  }

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
      if (isRegistrationRecord(value) && value.entry.id === key) records.push(value);
      else if (!this.warned.has(key)) {
        this.warned.add(key);
        this.logger.warn({ key }, "ignoring a malformed model registration in the state store");
      }
    }
    return { records: byRegistration(records), complete };
  }

  async add(record: RegistrationRecord): Promise<void> {
    await this.kv.set(record.entry.id, record);
    await this.backup?.save(await this.loadAll());
  }

  async remove(id: string): Promise<boolean> {
    const removed = await this.kv.delete(id);
    await this.backup?.save(await this.loadAll());
    return removed;
  }
}

/** Oldest registration first (the order ListModels shows them in). */
function byRegistration(records: RegistrationRecord[]): RegistrationRecord[] {
  return records.sort((a, b) => a.registeredAt - b.registeredAt);
}
