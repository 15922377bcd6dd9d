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

  /** Whether every file passed before and has not changed since (nothing is read). */
  async passedBefore(files: readonly string[]): Promise<boolean> {
    return this.allPassed(files, await Promise.all(files.map((f) => fs.stat(f).catch(() => undefined))));
  }

  async checkRemembered(files: readonly string[], kind: ArtifactKind): Promise<void> {
    const stats = await Promise.all(files.map((f) => fs.stat(f)));
    if (await this.allPassed(files, stats)) return;
    await this.validate(files, kind);
    await Promise.all(files.map((f, i) => this.store.remember(VALIDATED, f, stats[i]!, true)));
  }

  /** A remembered pass for every file, each as it is now (`stats`; a file that is gone never passed). */
  private async allPassed(files: readonly string[], stats: ReadonlyArray<FileIdentity | undefined>): Promise<boolean> {
    const known = await Promise.all(files.map((f, i) => stats[i] !== undefined && this.store.recalled<boolean>(VALIDATED, f, stats[i])));
    return known.every((passed) => passed === true);
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
