import type { ModelEntry } from "./model-entry.js";

/** A registered model as persisted. */
export interface RegistrationRecord {
  entry: ModelEntry;
  /** Epoch milliseconds; ListModels shows registered models in this order. */
  registeredAt: number;
}

/** Whether a stored value is a well-formed registration (anything else is skipped with a warning). */
export function isRegistrationRecord(value: unknown): value is RegistrationRecord {
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
