import type { FastifyInstance } from "fastify";
import { HealthCheckResponse_ServingStatus } from "@llmlb/runtime/gen/grpc/health/v1/health_pb";
import type { NodeClients } from "../clients.js";

/** GET /v0/health: 200 while serving, 503 while draining, from the same Health service gRPC answers. */
export function registerHealthRoutes(app: FastifyInstance, clients: NodeClients): void {
  app.get("/v0/health", async (_request, reply) => {
    const { status } = await clients.health.check({ service: "" });
    const serving = status === HealthCheckResponse_ServingStatus.SERVING;
    return reply.code(serving ? 200 : 503).send({ status: HealthCheckResponse_ServingStatus[status] });
  });
}
