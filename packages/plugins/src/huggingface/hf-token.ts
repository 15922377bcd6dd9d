import fs from "node:fs";
import os from "node:os";
import path from "node:path";

/**
 * The Hugging Face token: HF_TOKEN (already in the config) or the file `huggingface-cli login`
 * writes (`$HF_HOME/token`, default ~/.cache/huggingface/token). Options may name another file.
 */
export function hfToken(configured: string, tokenFile: unknown): string {
  if (configured) return configured;
  const file =
    typeof tokenFile === "string" && tokenFile
      ? tokenFile
      : path.join(process.env.HF_HOME ?? path.join(os.homedir(), ".cache", "huggingface"), "token");
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return "";
  }
}
