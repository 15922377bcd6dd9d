/**
 * GGUF file names in a repository: shard parts, quantization names, grouping into models and the
 * default pick when a registration names no file.
 */

/** A file of a repository listing. */
export interface RepoFile {
  path: string;
  size?: number;
  /** sha256 of an LFS file (lower-case hex). */
  sha256?: string;
}

/** One loadable model in a repository: a single GGUF file or every part of a sharded one. */
export interface GgufModelFiles {
  files: string[];
  /** Sum of the parts, when every size is known. */
  sizeBytes?: number;
  /** sha256 of the first file. */
  sha256?: string;
  quantization?: string;
  /** False when some parts of a sharded GGUF are missing from the listing. */
  complete: boolean;
}

const SHARD = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;
const QUANT =
  /(?:^|[-._])((?:UD-)?(?:I?Q\d(?:_[A-Z0-9]+)*|TQ\d_\d|BF16|F16|FP16|F32|MXFP4(?:_MOE)?))(?=[-._]|$)/gi;
/** Preferred quantizations when none is named, best first. */
export const DEFAULT_QUANTIZATIONS = ["Q4_K_M", "Q4_K_S", "Q5_K_M", "Q8_0"] as const;
const NOT_A_MODEL = /mmproj|imatrix/i;
/** "lora" as a word part, as LoRA adapter GGUFs are named ("x-lora-f16.gguf", "x-F16-LoRA.gguf", "lora_x.gguf"). */
const LORA_NAME = /(?:^|[-._ ])lora(?=[-._ ]|$)/i;

/** Whether a file's name says it is a LoRA adapter rather than a model. */
export function isLoraAdapterName(file: string): boolean {
  return LORA_NAME.test(baseName(file));
}

/** The shard numbering of a file name, e.g. "x-00001-of-00003.gguf" → { base: "x", index: 1, count: 3 }. */
export function shardParts(file: string): { base: string; index: number; count: number } | undefined {
  const match = SHARD.exec(file);
  if (!match) return undefined;
  const index = Number(match[2]);
  const count = Number(match[3]);
  return index >= 1 && count >= 2 && index <= count ? { base: match[1]!, index, count } : undefined;
}

/** Why a list of files is not a complete, ordered shard set, or undefined when it is one. */
export function shardSequenceProblem(files: readonly string[]): string | undefined {
  const first = shardParts(files[0] ?? "");
  if (!first) return `lists ${files.length} files; expected the parts of one sharded GGUF (name-00001-of-0000${files.length}.gguf, …)`;
  if (first.count !== files.length) return `lists ${files.length} parts but the names say ${first.count}; expected all ${first.count} parts`;
  for (const [i, name] of files.entries()) {
    const part = shardParts(name);
    if (!part || part.base !== first.base || part.index !== i + 1 || part.count !== first.count) {
      return `part ${i + 1} is "${name}"; expected parts of ${first.base} numbered 1 to ${first.count} in order`;
    }
  }
  return undefined;
}

/** The quantization a file name carries ("…-Q4_K_M.gguf" → "Q4_K_M"), upper-case, or undefined. */
export function quantizationOf(file: string): string | undefined {
  const name = baseName(file).replace(SHARD, "$1").replace(/\.gguf$/i, "");
  const found = [...name.matchAll(QUANT)].map((m) => m[1]!.toUpperCase());
  // "…-Q4_K_M-fp16.gguf" is a Q4_K_M model with f16 embeddings: a quantized type wins over a float one.
  return found.filter((q) => !/^(BF16|F16|FP16|F32)$/.test(q)).pop() ?? found.pop();
}

export function isGguf(path: string): boolean {
  return path.toLowerCase().endsWith(".gguf");
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** Groups a listing's GGUF files into models (shard parts together, in order), sorted by first file. */
export function groupGgufFiles(listing: readonly RepoFile[]): GgufModelFiles[] {
  const singles: GgufModelFiles[] = [];
  const sharded = new Map<string, { count: number; parts: Map<number, RepoFile> }>();
  for (const file of listing) {
    if (!isGguf(file.path)) continue;
    const shard = shardParts(file.path);
    if (!shard) {
      singles.push(describeGroup([file], true));
      continue;
    }
    const key = `${shard.base}\u0000${shard.count}`;
    const group = sharded.get(key) ?? { count: shard.count, parts: new Map<number, RepoFile>() };
    group.parts.set(shard.index, file);
    sharded.set(key, group);
  }
  const groups = [...singles];
  for (const { count, parts } of sharded.values()) {
    const ordered = [...parts.entries()].sort(([a], [b]) => a - b).map(([, file]) => file);
    groups.push(describeGroup(ordered, parts.size === count));
  }
  return groups.sort((a, b) => (a.files[0]! < b.files[0]! ? -1 : 1));
}

function describeGroup(files: RepoFile[], complete: boolean): GgufModelFiles {
  const sizes = files.map((f) => f.size);
  const quantization = quantizationOf(files[0]!.path);
  return {
    files: files.map((f) => f.path),
    ...(complete && sizes.every((s) => typeof s === "number") ? { sizeBytes: sizes.reduce((a, b) => a! + b!, 0) } : {}),
    ...(files[0]!.sha256 ? { sha256: files[0]!.sha256 } : {}),
    ...(quantization ? { quantization } : {}),
    complete,
  };
}

/** The group a named file belongs to (any part of a sharded GGUF selects all parts). */
export function groupOf(groups: readonly GgufModelFiles[], file: string): GgufModelFiles | undefined {
  return groups.find((g) => g.files.includes(file));
}

/** A complete model a node can serve on its own: not a vision projector, importance matrix or LoRA adapter. */
export function isServableModel(group: GgufModelFiles): boolean {
  const first = group.files[0]!;
  return group.complete && !NOT_A_MODEL.test(baseName(first)) && !isLoraAdapterName(first);
}

/**
 * The model to register when no file was named: Q4_K_M, then Q4_K_S, Q5_K_M, Q8_0, else the
 * smallest. Vision projectors, importance matrices and LoRA adapters are never picked.
 */
export function pickDefault(groups: readonly GgufModelFiles[]): GgufModelFiles | undefined {
  const candidates = groups.filter(isServableModel);
  for (const quantization of DEFAULT_QUANTIZATIONS) {
    const match = candidates.find((g) => g.quantization === quantization);
    if (match) return match;
  }
  return [...candidates].sort((a, b) => (a.sizeBytes ?? Infinity) - (b.sizeBytes ?? Infinity))[0];
}
