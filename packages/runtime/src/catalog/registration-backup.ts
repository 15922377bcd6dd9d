import fs from "node:fs/promises";
import path from "node:path";
import { nodeDbIdentity } from "../db/node-db.js";
import type { Logger } from "../logging/index.js";
import { writeFileAtomic } from "../store/fs-utils.js";
import { isRegistrationRecord, type RegistrationRecord } from "./registration-record.js";

/** `<home>/registrations.json`. */
export const registrationBackupPath = (home: string): string => path.join(home, "registrations.json");

interface BackupFile {
  /** The identity of the node.db the copy was taken from (see nodeDbIdentity); an inode in earlier versions. */
  nodeDb: string;
  registrations: RegistrationRecord[];
}

/**
 * A copy of the home's registrations next to node.db, rewritten after every change, so a node.db
 * found corrupt and rebuilt (see prepareNodeDb) loses none of them. The copy names the node.db it
 * was taken from: a node.db that is another file takes back the registrations it lacks.
 */
export class RegistrationBackup {
  readonly file: string;

  constructor(
    private readonly home: string,
    private readonly logger: Logger,
  ) {
    this.file = registrationBackupPath(home);
  }

  async save(records: readonly RegistrationRecord[]): Promise<void> {
    try {
      const backup: BackupFile = { nodeDb: await nodeDbIdentity(this.home), registrations: [...records] };
      await writeFileAtomic(this.file, `${JSON.stringify(backup, null, 1)}\n`, { fsync: true });
    } catch (err) {
      this.logger.warn({ err, file: this.file }, "could not write the copy of the model registrations; if node.db is ever rebuilt, registrations made since are lost");
    }
  }

  /** The copy's registrations when it was taken from another node.db than the current one; else none. */
  async fromAnotherNodeDb(): Promise<RegistrationRecord[]> {
    const text = await fs.readFile(this.file, "utf8").catch(() => undefined);
    if (text === undefined) return [];
    const backup = parseBackup(text);
    if (!backup) {
      this.logger.warn({ file: this.file }, "ignoring a malformed copy of the model registrations (it is rewritten at the next change)");
      return [];
    }
    if (backup.nodeDb === (await nodeDbIdentity(this.home))) return [];
    const records = backup.registrations.filter(isRegistrationRecord);
    if (records.length < backup.registrations.length) {
      this.logger.warn({ file: this.file, skipped: backup.registrations.length - records.length }, "skipping malformed registrations in the copy (an invalid id, repo or file path)");
    }
    return records;
  }
}

function parseBackup(text: string): BackupFile | undefined {
  try {
    const value = JSON.parse(text) as Partial<BackupFile> | null;
    return typeof value?.nodeDb === "string" && Array.isArray(value.registrations) ? (value as BackupFile) : undefined;
  } catch {
    return undefined;
  }
}
