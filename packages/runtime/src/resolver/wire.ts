import type { NodeRuntime } from "../node-runtime.js";
import { createResolverService } from "../services/resolver-service.js";
import { openResolverStack } from "./open-resolver.js";

/**
 * Wires the store, the source chain, the transfer engine and the resolver into a runtime:
 * sets runtime.store, runtime.resolver and the ResolverService, and closes them with the runtime.
 * Model ids are looked up in runtime.models at each call, so a catalog installed later is seen.
 */
export async function wireResolver(runtime: NodeRuntime): Promise<void> {
  const stack = await openResolverStack({
    config: runtime.config,
    logger: runtime.logger,
    events: runtime.events,
    models: { get: (id) => runtime.models.get(id) },
  });
  runtime.onClose(() => stack.close());
  runtime.store = stack.store;
  runtime.resolver = stack.resolver;
  runtime.sources = stack.sources;
  runtime.services.resolver = createResolverService(stack.resolver, stack.sources);
}
