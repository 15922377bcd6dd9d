import { LlmlbError } from "../errors/index.js";
import type { SourceFailure } from "./source-chain.js";

const FILE_VERDICTS = new Set(["INVALID_MODEL_FILE", "CHECKSUM_MISMATCH", "SIZE_MISMATCH"]);

/**
 * The error for a resolution no source could satisfy. When exactly one source really failed and
 * the others simply did not have the artifact, that source's own error (e.g. GATED_REPO) is the
 * answer; so is the one verdict on a file's bytes (INVALID_MODEL_FILE, CHECKSUM_MISMATCH); otherwise ALL_SOURCES_FAILED. Metadata "sources" lists every source with its reason.
 */
export function combineFailures(what: string, failures: readonly SourceFailure[]): LlmlbError {
  const sources = JSON.stringify(failures.map(({ source, code, reason }) => ({ source, code, reason })));
  if (failures.length === 0) {
    return new LlmlbError("ALL_SOURCES_FAILED", `no enabled source can supply ${what}; check "sources" in config.json`, { sources });
  }
  const real = failures.filter((f) => !f.notHere);
  // A source that had the file but whose bytes were refused says more than sources that failed to offer it.
  const verdicts = real.filter((f) => FILE_VERDICTS.has(f.code));
  const only = real.length === 1 ? real[0] : verdicts.length === 1 ? verdicts[0] : undefined;
  if (only?.error) {
    const others = failures.filter((f) => f !== only).map((f) => `${f.source}: ${f.reason}`);
    const also = others.length > 0 ? ` (other sources: ${others.join("; ")})` : "";
    return new LlmlbError(only.error.reason, `${only.error.message}${also}`, { ...only.error.metadata, source: only.source, sources }, { cause: only.error });
  }
  const list = failures.map((f) => `${f.source}: ${f.reason}`).join("; ");
  return new LlmlbError("ALL_SOURCES_FAILED", `no source could supply ${what} — ${list}`, { sources });
}
