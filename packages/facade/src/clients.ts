import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
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

const bearer = (apiKey: string): Interceptor => (next) => async (req) => {
  req.header.set("authorization", `Bearer ${apiKey}`);
  return next(req);
};

/** A gRPC (h2c) transport to a remote runtime, sending the API key when one is configured. */
export function remoteTransport(baseUrl: string, apiKey: string): Transport {
  return createGrpcTransport({ baseUrl, interceptors: apiKey ? [bearer(apiKey)] : [] });
}
