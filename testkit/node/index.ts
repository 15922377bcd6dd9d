export { startTestNode, tempDir, isolatedEnv, type TestNode } from "./test-node.js";
export { grpcJsClient } from "./grpc-js-client.js";
export { spawnChildNode, type ChildNode } from "./child-node.js";
