// @ts-check
/**
 * An llmlb source plugin that serves models from a read-only mirror directory, laid out like the
 * Hugging Face hub (`<root>/<org>/<repo>/<file>`), and LoRA adapters from `<root>/adapters/<file>`.
 * Files are used in place: the runtime never copies or writes into the mirror.
 *
 * config.json:
 *   { "sources": [
 *       { "module": "@llmlb/plugins/local" },
 *       { "module": "llmlb-source-mirror", "priority": 15, "options": { "root": "/mnt/models" } },
 *       { "module": "@llmlb/plugins/huggingface" } ] }
 */
import fs from "node:fs/promises";
import path from "node:path";
import { definePlugin } from "@llmlb/runtime/plugin";

/** @param {string} file */
async function isFile(file) {
  try {
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}

/** Joins under root and refuses anything that would leave it. @param {string} root @param {string[]} parts */
function inside(root, ...parts) {
  const full = path.resolve(root, ...parts);
  return full.startsWith(path.resolve(root) + path.sep) ? full : undefined;
}

export default definePlugin(({ options }) => {
  const root = options.root;
  if (typeof root !== "string" || !path.isAbsolute(root)) {
    throw new Error('option "root" must be an absolute directory path, e.g. { "root": "/mnt/models" }');
  }
  return {
    name: typeof options.name === "string" ? options.name : "mirror",
    priority: 15,
    kinds: ["model", "adapter"],
    /** @type {import("@llmlb/runtime/plugin").SourceProvider["locate"]} */
    async locate(spec) {
      const files =
        spec.kind === "model"
          ? spec.model.files.map((file) => inside(root, ...spec.model.repo.split("/"), file))
          : [inside(root, "adapters", path.basename(spec.ref))];
      const missing = [];
      for (const [i, file] of files.entries()) if (!file || !(await isFile(file))) missing.push(i);
      if (missing.length > 0) {
        return { type: "not-here", reason: `not in the mirror at ${root}`, code: "NOT_HERE" };
      }
      return { type: "local", files: /** @type {string[]} */ (files) };
    },
  };
});
