export * from "./errors/index.js";
export * from "./config/index.js";
export * from "./logging/index.js";
export { NodeRuntime } from "./node-runtime.js";
export { nodeRoutes, SERVED_SERVICE_NAMES, type NodeServices } from "./services/routes.js";
export { HealthState } from "./services/health-service.js";
export { startGrpcServer, type GrpcServer } from "./server/grpc-server.js";
export { listenOrExplain } from "./server/listen.js";
export { errorInterceptor, authInterceptor, bearerMatches, AUTH_HELP } from "./server/interceptors.js";
