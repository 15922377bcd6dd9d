import type { FastifyInstance } from "fastify";
import { ArtifactKind } from "@llmlb/runtime/gen/llmlb/node/v1/model_pb";
import type { NodeClients } from "../../clients.js";

/** GET /v0/sources: the effective source chain, in the order it is tried. */
export function registerSourceRoutes(app: FastifyInstance, clients: NodeClients): void {
  app.get("/v0/sources", async () => {
    const { sources } = await clients.resolver.listSources({});
    return {
      sources: sources.map((s) => ({
        name: s.name,
        priority: s.priority,
        enabled: s.enabled,
        kinds: s.kinds.map((k) => (ArtifactKind[k] ?? "UNSPECIFIED").toLowerCase()),
        module: s.module,
      })),
    };
  });
}
