import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { ModelCatalogService } from "../gen/llmlb/node/v1/catalog_pb.js";
import { InferenceService } from "../gen/llmlb/node/v1/inference_pb.js";
import { ResolverService } from "../gen/llmlb/node/v1/resolver_pb.js";
import { reflectionRoutes } from "./reflection-service.js";

/** The service implementations of one node. Methods left out answer UNIMPLEMENTED. */
export interface NodeServices {
  catalog: Partial<ServiceImpl<typeof ModelCatalogService>>;
  resolver: Partial<ServiceImpl<typeof ResolverService>>;
  inference: Partial<ServiceImpl<typeof InferenceService>>;
  health: ServiceImpl<typeof Health>;
}

export const SERVED_SERVICE_NAMES = [
  ModelCatalogService.typeName,
  ResolverService.typeName,
  InferenceService.typeName,
] as const;

const reflection = reflectionRoutes([ModelCatalogService, ResolverService, InferenceService, Health]);

/**
 * Registers every service on a Connect router, with gRPC Server Reflection over them; both listeners
 * and the in-process transport use this.
 */
export function nodeRoutes(services: NodeServices): (router: ConnectRouter) => void {
  return (router) => {
    router.service(ModelCatalogService, services.catalog);
    router.service(ResolverService, services.resolver);
    router.service(InferenceService, services.inference);
    router.service(Health, services.health);
    reflection(router);
  };
}
