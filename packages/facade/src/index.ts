export { startNode, startFacade, loggerFor, type RunningNode, type RunningFacade } from "./start-node.js";
export { createNodeClients, remoteTransport, type NodeClients } from "./clients.js";
export { startHttpServer, type HttpServer, type HttpServerOptions } from "./http/http-server.js";
export { createProgram, runCli } from "./cli/program.js";
