import type { FastifyInstance } from "fastify";
import type { NodeMetrics } from "@llmlb/runtime";

/** GET /metrics: Prometheus text exposition of the node's metrics. */
export function registerMetricsRoute(app: FastifyInstance, metrics: NodeMetrics): void {
  app.get("/metrics", async (_request, reply) => reply.type(metrics.contentType).send(await metrics.render()));
}
