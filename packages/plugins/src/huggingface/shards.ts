const SHARD = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;

/**
 * Every file of a model: a sharded GGUF named by its first part ("name-00001-of-00003.gguf")
 * stands for all its parts, in order (llama.cpp loads a split model from the first part).
 */
export function expandShards(files: readonly string[]): string[] {
  if (files.length !== 1) return [...files];
  const first = files[0]!;
  const m = SHARD.exec(first);
  if (!m || Number(m[2]) !== 1) return [first];
  const count = Number(m[3]);
  const width = m[3]!.length;
  return Array.from({ length: count }, (_, i) => `${m[1]}-${String(i + 1).padStart(width, "0")}-of-${m[3]}.gguf`);
}

/** The file's name inside the store directory (shards in repo sub-folders land side by side). */
export function storeName(repoPath: string): string {
  return repoPath.slice(repoPath.lastIndexOf("/") + 1);
}
