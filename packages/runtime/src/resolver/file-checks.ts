import fs from "node:fs/promises";
import type { ModelEvents } from "../events/model-events.js";
import { isLlmlbError } from "../errors/index.js";
import type { Logger } from "../logging/index.js";
import type { FileIdentity, Store } from "../store/store.js";

export type ArtifactKind = "model" | "adapter";
/** The node's file validation (GGUF structure, limits, embedded template): throws INVALID_MODEL_FILE. */
export type ValidateFiles = (files: readonly string[], kind: ArtifactKind) => Promise<void>;

const VALIDATED = "gguf-valid";

/**
 * Runs the file validation, remembering a pass per file by inode, size and mtime in the store index,
 * so files that do not change (extra model directories, installed models at start) are read once.
 */
export class FileChecks {
  constructor(
    private readonly store: Store,
    readonly validate: ValidateFiles,
  ) {}

  /** Whether every file passed before and is still as it was then (`identities`, as just read; nothing else is read). */
  async passedBefore(files: readonly string[], identities: readonly FileIdentity[]): Promise<boolean> {
    const known = await Promise.all(files.map((f, i) => this.store.recalled<boolean>(VALIDATED, f, identities[i]!)));
    return known.every((passed) => passed === true);
  }

  async checkRemembered(files: readonly string[], kind: ArtifactKind): Promise<void> {
    const stats = await Promise.all(files.map((f) => fs.stat(f)));
    if (await this.passedBefore(files, stats)) return;
    await this.validate(files, kind);
    await Promise.all(files.map((f, i) => this.store.remember(VALIDATED, f, stats[i]!, true)));
  }

  /**
   * Validates every installed model once (a pass is remembered). A model that fails becomes FAILED
   * with INVALID_MODEL_FILE; its files stay for the operator to inspect or delete.
   */
  async checkInstalledModels(events: ModelEvents, logger: Logger): Promise<string[]> {
    const failed: string[] = [];
    for (const model of await this.store.listModels()) {
      try {
        await this.checkRemembered(model.files.map((f) => f.path), "model");
      } catch (err) {
        if (!isLlmlbError(err)) throw err;
        failed.push(model.id);
        logger.warn({ id: model.id, reason: err.reason, err: err.message }, "an installed model failed validation");
        events.emit({ type: "transfer-failed", modelId: model.id, reason: err.message, code: err.reason });
      }
    }
    return failed;
  }
}
