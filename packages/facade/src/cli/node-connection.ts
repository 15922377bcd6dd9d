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
 * `localFallback: false` fails with NODE_NOT_RUNNING. A node that requires client certificates
 * (LLMLB_TLS_CLIENT_CA), which the CLI does not present, is not asked.
 */
export async function connectToNode(
  config: NodeConfig,
  options: { probeTimeoutMs?: number; localFallback?: boolean } = {},
): Promise<NodeConnection> {
  const url = config.runtimeUrl || grpcUrlOf(config);
  if (config.tlsClientCa && !config.runtimeUrl) {
    if (options.localFallback === false) throw clientCertificateRequired(url);
    return inThisProcess(config);
  }
  const remote = createNodeClients(remoteTransport(url, config.apiKey));
  try {
    await remote.health.check({ service: "" }, { timeoutMs: options.probeTimeoutMs ?? 1500 });
    return { clients: remote, mode: "remote", close: async () => {} };
  } catch (err) {
    // A node answered, with a certificate this process refuses: not a node that is absent.
    const refused = certificateRefusal(err);
    if (refused) throw untrustedCertificate(url, refused);
    if (options.localFallback === false) throw nodeNotRunning(url);
    return inThisProcess(config);
  }
}

async function inThisProcess(config: NodeConfig): Promise<NodeConnection> {
  const runtime = await NodeRuntime.create(config, silentLogger(), { sourceDefaults: builtinSourceDefaults(config) });
  return {
    clients: createNodeClients(runtime.inProcessTransport()),
    mode: "local",
    close: () => runtime.close(),
  };
}

function clientCertificateRequired(url: string): LlmlbError {
  return new LlmlbError(
    "CLIENT_CERTIFICATE_REQUIRED",
    `the node at ${url} requires client certificates (LLMLB_TLS_CLIENT_CA), which the CLI does not present; use a gRPC client with a certificate (see SECURITY.md)`,
  );
}

/**
 * OpenSSL's names for a server certificate that failed verification (X509_V_ERR_* without the
 * prefix, as Node reports them: expired, untrusted, self-signed, a leaf not for servers, a bad
 * chain…) and Node's own for a name the certificate does not cover.
 */
const CERTIFICATE_REFUSED =
  /^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_\w+|CERT_\w+|CRL_\w+|ERROR_IN_\w+|INVALID_(CA|PURPOSE|NON_CA|EXTENSION|POLICY_EXTENSION)|PATH_LENGTH_EXCEEDED|HOSTNAME_MISMATCH|IP_ADDRESS_MISMATCH|ERR_TLS_CERT_ALTNAME_INVALID)$/;

/** The verification error somewhere in `err`'s causes, if the node's certificate was refused. */
function certificateRefusal(err: unknown): Error | undefined {
  for (let cause = err; cause instanceof Error; cause = cause.cause) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === "string" && CERTIFICATE_REFUSED.test(code)) return cause;
  }
  return undefined;
}

/** Refusals that trusting the node's CA cures; the others (expired, another name, not for servers) the node's certificate must. */
const NOT_TRUSTED = /^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|UNABLE_TO_VERIFY_LEAF_SIGNATURE|CERT_UNTRUSTED)$/;

function untrustedCertificate(url: string, cause: Error): LlmlbError {
  const fix = NOT_TRUSTED.test(String((cause as { code?: unknown }).code))
    ? "give its certificate or CA to the CLI with NODE_EXTRA_CA_CERTS=<file.pem>"
    : "the node's certificate (LLMLB_TLS_CERT) must be valid now, name the host the CLI connects to and be meant for servers";
  return new LlmlbError("NODE_CERTIFICATE_UNTRUSTED", `the node at ${url} answers with a certificate this machine does not trust (${cause.message}); ${fix}`);
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
