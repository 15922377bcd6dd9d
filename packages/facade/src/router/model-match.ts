import { routerModelName } from "@llmlb/runtime";
import { ModelState, type Model } from "@llmlb/runtime/gen/llmlb/node/v1/model_pb";

/** A model as a router names it: `name`, and the Hugging Face repo and file when the router says. */
export interface RouterModelName {
  name: string;
  repo?: string | undefined;
  filename?: string | undefined;
}

/**
 * The catalog model a router means. A catalog id is taken as is; otherwise the name is an llmlb
 * router's (routerModelName of the Hugging Face repo), matched on repo and on the file when known. Runnable models win over unsupported ones; undefined when nothing
 * matches, or when several runnable models of the repo match and no file tells them apart.
 */
export function matchRouterModel(models: readonly Model[], wanted: RouterModelName): Model | undefined {
  const byId = models.find((m) => m.id === wanted.name);
  if (byId) return byId;
  const repo = routerModelName(wanted.repo || wanted.name);
  if (repo === undefined) return undefined;
  const candidates = models.filter((m) => routerModelName(m.repo) === repo && (!wanted.filename || m.filename === wanted.filename || m.files.includes(wanted.filename)));
  const runnable = candidates.filter((m) => m.state !== ModelState.UNSUPPORTED);
  const pool = runnable.length > 0 ? runnable : candidates;
  return pool.length === 1 ? pool[0] : undefined;
}
