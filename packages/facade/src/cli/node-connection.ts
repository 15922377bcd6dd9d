import { builtinSourceDefaults } from "@llmlb/plugins";
import { LlmlbError, NodeRuntime, silentLogger, type NodeConfig } from "@llmlb/runtime";
import { HealthCheckResponse_ServingStatus } from "@llmlb/runtime/gen/grpc/health/v1/health_pb";
import { createNodeClients, remoteTransport, type NodeClients } from "../clients.js";

export interface NodeConnection {
  clients: NodeClients;
  /** "remote" when a running node answered on the gRPC port, else "local" (this process, same store). */
  mode: "remote" | "local";
  close(): Promise<void>;
}

/** The gRPC address of the node this configuration describes. */
export function grpcUrlOf(config: NodeConfig): string {
  const host = config.host === "0.0.0.0" ? "127.0.0.1" : config.host === "::" ? "::1" : config.host;
  return `${config.tlsCert ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${config.grpcPort}`;
}

/**
 * Talks to the running node over gRPC when one answers; otherwise runs the services in this
 * process on the same store (its locks keep both from downloading one model twice), or with
 * `localFallback: false` fails with NODE_NOT_RUNNING.
 */
export async function connectToNode(
  config: NodeConfig,
  options: { probeTimeoutMs?: number; localFallback?: boolean } = {},
): Promise<NodeConnection> {
  const remote = createNodeClients(remoteTransport(config.runtimeUrl || grpcUrlOf(config), config.apiKey));
  try {
    await remote.health.check({ service: "" }, { timeoutMs: options.probeTimeoutMs ?? 1500 });
    return { clients: remote, mode: "remote", close: async () => {} };
  } catch {
    if (options.localFallback === false) {
      throw nodeNotRunning(config.runtimeUrl || grpcUrlOf(config));
    }
    const runtime = await NodeRuntime.create(config, silentLogger(), { sourceDefaults: builtinSourceDefaults(config) });
    return {
      clients: createNodeClients(runtime.inProcessTransport()),
      mode: "local",
      close: () => runtime.close(),
    };
  }
}

function nodeNotRunning(url: string): LlmlbError {
  return new LlmlbError("NODE_NOT_RUNNING", `no node answers at ${url}; start one with llmlb-node serve`);
}

/** The node stopped under a call (a stream cut, NOT_SERVING while it drains, a refused connection): what was lost and how to go on. */
function connectionLost(consequence: string): LlmlbError {
  return new LlmlbError("NODE_NOT_RUNNING", `the connection to the node was lost (the node stopped); ${consequence}`);
}

/**
 * After a call to a running node failed: the error to show. The node's own answer (a model it
 * cannot find) is shown as it is; a node that is gone or draining is named, with `consequence`.
 */
export async function explainFailure(connection: NodeConnection, err: unknown, consequence: string): Promise<unknown> {
  if (connection.mode !== "remote") return err;
  try {
    const { status } = await connection.clients.health.check({ service: "" }, { timeoutMs: 1500 });
    if (status === HealthCheckResponse_ServingStatus.SERVING) return err;
  } catch {
    // No answer at all: the node is gone.
  }
  return connectionLost(consequence);
}
