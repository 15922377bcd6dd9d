export { startNode, loggerFor, type RunningNode } from "./start-node.js";
export { createNodeClients, type NodeClients } from "./clients.js";
export { startHttpServer, type HttpServer, type HttpServerOptions } from "./http/http-server.js";
export { createProgram, runCli } from "./cli/program.js";
