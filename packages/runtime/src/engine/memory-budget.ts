import os from "node:os";
import { formatBytes } from "../config/index.js";
import { LlmlbError } from "../errors/index.js";

/** The configured budget, or 80% of the memory free right now (the node's start) when it is 0. */
export function resolveMemoryBudget(configured: number): number {
  return configured > 0 ? configured : Math.floor(os.freemem() * 0.8);
}

export function insufficientMemory(modelId: string, needed: number, budget: number, busyBytes: number): LlmlbError {
  const reason =
    needed > budget
      ? `it needs ${formatBytes(needed)} and the whole budget is ${formatBytes(budget)}; raise LLMLB_MEMORY_BUDGET or use a smaller quantization`
      : `it needs ${formatBytes(needed)} and models serving requests hold ${formatBytes(busyBytes)} of the ${formatBytes(budget)} budget; retry later`;
  return new LlmlbError("INSUFFICIENT_MEMORY", `model "${modelId}" does not fit in memory: ${reason}`, {
    model_id: modelId,
    needed_bytes: String(needed),
    budget_bytes: String(budget),
  });
}
