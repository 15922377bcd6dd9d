import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { Health } from "@llmlb/runtime/gen/grpc/health/v1/health_pb";
import { ModelCatalogService } from "@llmlb/runtime/gen/llmlb/node/v1/catalog_pb";
import { InferenceService } from "@llmlb/runtime/gen/llmlb/node/v1/inference_pb";
import { ResolverService } from "@llmlb/runtime/gen/llmlb/node/v1/resolver_pb";

/** Clients of every node service over one transport (in-process, or gRPC to a remote runtime). */
export interface NodeClients {
  catalog: Client<typeof ModelCatalogService>;
  resolver: Client<typeof ResolverService>;
  inference: Client<typeof InferenceService>;
  health: Client<typeof Health>;
}

export function createNodeClients(transport: Transport): NodeClients {
  return {
    catalog: createClient(ModelCatalogService, transport),
    resolver: createClient(ResolverService, transport),
    inference: createClient(InferenceService, transport),
    health: createClient(Health, transport),
  };
}
