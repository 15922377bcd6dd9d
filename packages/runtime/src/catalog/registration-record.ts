import { isValidModelId } from "../store/model-id.js";
import type { ModelEntry } from "./model-entry.js";
import { isRepoFilePath, isRepoId } from "./repo-ref.js";

/** A registered model as persisted. */
export interface RegistrationRecord {
  entry: ModelEntry;
  /** Epoch milliseconds; ListModels shows registered models in this order. */
  registeredAt: number;
}

/** Whether a stored value (node.db, the fleet's store, registrations.json) is a well-formed registration; anything else is skipped with a warning. */
export function isRegistrationRecord(value: unknown): value is RegistrationRecord {
  if (typeof value !== "object" || value === null) return false;
  const { entry, registeredAt } = value as Partial<RegistrationRecord>;
  return (
    typeof registeredAt === "number" &&
    typeof entry === "object" &&
    entry !== null &&
    typeof entry.id === "string" &&
    isValidModelId(entry.id) &&
    typeof entry.repo === "string" &&
    isRepoId(entry.repo) &&
    Array.isArray(entry.files) &&
    entry.files.length > 0 &&
    entry.files.every(isRepoFilePath) &&
    Array.isArray(entry.capabilities) &&
    entry.capabilities.length > 0 &&
    entry.capabilities.every((c) => KNOWN_CAPABILITIES.has(c)) &&
    entry.origin === "registered"
  );
}

/** What this node can serve; a record naming another capability (a newer node's, a hand edit) is skipped. */
const KNOWN_CAPABILITIES = new Set<unknown>(["text-generation", "embeddings", "rerank"] satisfies Array<ModelEntry["capabilities"][number]>);
