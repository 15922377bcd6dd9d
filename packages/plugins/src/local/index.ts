import fs from "node:fs/promises";
import { definePlugin, LlmlbError, parseAdapterRef, type ArtifactSpec, type LocateResult } from "@llmlb/runtime/plugin";
import { expandShards } from "../huggingface/shards.js";
import { stringListOption } from "../options.js";
import { findInDir } from "./find-in-dir.js";

/**
 * Files already on this machine, used in place and never copied: models in read-only extra
 * directories (LLMLB_EXTRA_MODEL_DIRS, e.g. a Hugging Face cache, so the same 5 GB file is not
 * stored twice) and adapters given by path. The node's own store is checked by the resolver
 * before any source. Options: `dirs` (more directories); the node passes `extraModelDirs`.
 */
export default definePlugin(({ options }) => {
  const dirs = [...(stringListOption(options, "extraModelDirs") ?? []), ...(stringListOption(options, "dirs") ?? [])];
  return {
    name: "local",
    priority: 10,
    kinds: ["model", "adapter"] as const,
    async locate(spec: ArtifactSpec): Promise<LocateResult> {
      if (spec.kind === "adapter") {
        const ref = parseAdapterRef(spec.ref);
        if (ref.scheme !== "path") return { type: "not-here", reason: "not a local path", code: "NOT_HERE" };
        const stat = await fs.stat(ref.path).catch(() => undefined);
        if (!stat?.isFile()) throw new LlmlbError("ADAPTER_NOT_FOUND", `there is no adapter file at ${ref.path}`, { ref: spec.ref });
        return { type: "local", files: [ref.path] };
      }
      if (dirs.length === 0) {
        return { type: "not-here", reason: "not in the store, and no extra model directories are configured (LLMLB_EXTRA_MODEL_DIRS)", code: "NOT_HERE" };
      }
      const model = {
        id: spec.id,
        repo: spec.model.repo,
        files: expandShards(spec.model.files),
        ...((spec.pinnedRevision ?? spec.model.revision) ? { revision: spec.pinnedRevision ?? spec.model.revision } : {}),
      };
      for (const dir of dirs) {
        const hit = await findInDir(dir, model);
        if (hit) return { type: "local", ...hit };
      }
      return { type: "not-here", reason: `not in the store nor in ${dirs.join(", ")}`, code: "NOT_HERE" };
    },
  };
});
