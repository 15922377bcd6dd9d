import { isValidModelId } from "../store/model-id.js";
import type { ModelEntry } from "./model-entry.js";
import { CAPABILITY_TO_PROTO } from "./model-proto.js";
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
    // A capability this node does not serve (a newer node's, a hand edit): the record is skipped.
    entry.capabilities.every((c: unknown) => typeof c === "string" && Object.hasOwn(CAPABILITY_TO_PROTO, c)) &&
    entry.origin === "registered"
  );
}

