import fs from "node:fs/promises";
import path from "node:path";
import { isSafeFileName } from "./model-id.js";
import { writeFileAtomic } from "./fs-utils.js";
import type { ArtifactKind } from "./artifact-kind.js";

export const METADATA_FILE = "metadata.json";

export type ArtifactArea = "models" | "adapters";

export interface StoredFile {
  name: string;
  size: number;
  /** Lower-case hex sha256, verified when the file was installed. */
  sha256: string;
}

/** metadata.json of one installed model or adapter: the truth on disk (the index only caches it). */
export interface ArtifactMetadata {
  schema: 1;
  id: string;
  kind: ArtifactKind;
  display_name?: string;
  /** Hugging Face repository (models, hf: adapters). */
  repo?: string;
  /** Adapter reference as the user wrote it. */
  ref?: string;
  /** Commit the files came from; later resolutions stay pinned to it. */
  revision?: string;
  /** Name of the source provider that supplied the files. */
  source: string;
  downloaded_at: string;
  size_bytes: number;
  /** In order; the first is the one to load. */
  files: StoredFile[];
  /**
   * Every file matched a sha256 known before the download (from the source, the catalog or the
   * hub's listing). false: the source offered no digest for some file, so only its size was checked.
   * Absent in metadata written before this was recorded.
   */
  verified?: boolean;
}

const SHA256 = /^[0-9a-f]{64}$/;

function isStoredFile(value: unknown): value is StoredFile {
  const f = value as StoredFile;
  return (
    typeof f === "object" && f !== null &&
    typeof f.name === "string" && isSafeFileName(f.name) &&
    Number.isSafeInteger(f.size) && f.size >= 0 &&
    typeof f.sha256 === "string" && SHA256.test(f.sha256)
  );
}

export function parseMetadata(text: string): ArtifactMetadata | undefined {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return undefined;
  }
  const m = data as ArtifactMetadata;
  if (
    typeof m !== "object" || m === null || m.schema !== 1 ||
    typeof m.id !== "string" || (m.kind !== "model" && m.kind !== "adapter") ||
    typeof m.source !== "string" || typeof m.downloaded_at !== "string" ||
    !Array.isArray(m.files) || m.files.length === 0 || !m.files.every(isStoredFile)
  ) {
    return undefined;
  }
  return m;
}

export async function readMetadata(dir: string): Promise<ArtifactMetadata | undefined> {
  try {
    return parseMetadata(await fs.readFile(path.join(dir, METADATA_FILE), "utf8"));
  } catch {
    return undefined;
  }
}

export async function writeMetadata(dir: string, metadata: ArtifactMetadata): Promise<void> {
  await writeFileAtomic(path.join(dir, METADATA_FILE), `${JSON.stringify(metadata, null, 2)}\n`, { fsync: true });
}
