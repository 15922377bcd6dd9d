import type { FastifyInstance } from "fastify";
import type { NodeClients } from "../clients.js";
import { healthBody } from "../router/router-routes.js";

/**
 * GET /v0/health: 200 while serving, 503 while draining, from the same Health service gRPC answers;
 * the body carries the GPU and load figures an llmlb router (v3.0) reads.
 */
export function registerHealthRoutes(app: FastifyInstance, clients: NodeClients): void {
  app.get("/v0/health", async (_request, reply) => {
    const { serving, body } = await healthBody(clients);
    return reply.code(serving ? 200 : 503).send({ ...body, status: serving ? "SERVING" : "NOT_SERVING" });
  });
}
