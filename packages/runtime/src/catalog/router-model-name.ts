/**
 * The name an llmlb router gives a model of a Hugging Face repo (its `generate_model_id`): the repo
 * lower-cased, without leading or trailing slashes. Undefined for a repo the router would name
 * "_latest" (empty, or with `..` or a NUL), which names no model of ours.
 */
export function routerModelName(repo: string): string | undefined {
  if (repo.includes("..") || repo.includes("\0")) return undefined;
  const trimmed = repo.toLowerCase().replace(/^\/+|\/+$/g, "");
  return trimmed === "" ? undefined : trimmed;
}
