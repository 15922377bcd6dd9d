import fs from "node:fs";

/**
 * The Hugging Face token: config.hfToken (HF_TOKEN, HUGGING_FACE_HUB_TOKEN, or the file
 * `huggingface-cli login` writes — the config loader reads it), unless the source's `tokenFile`
 * option names another file.
 */
export function hfToken(configured: string, tokenFile: unknown): string {
  if (typeof tokenFile !== "string" || tokenFile === "") return configured;
  try {
    return fs.readFileSync(tokenFile, "utf8").trim();
  } catch {
    return configured;
  }
}
