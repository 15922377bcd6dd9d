export { startTestNode, tempDir, isolatedEnv, type TestNode } from "./test-node.js";
export { errorInfoOf, grpcJsClient, streamOutcome } from "./grpc-js-client.js";
export { spawnChildNode, type ChildNode } from "./child-node.js";
export { fillDisk, smallDisk, smallDisksWork, type SmallDisk } from "./small-disk.js";
export { resolveModel, failureLabels, sha256OfFile, type Resolution } from "./resolve-model.js";
export { logSink } from "./log-sink.js";
export { CLI_ARGS, runCli, type CliRun } from "./run-cli.js";
