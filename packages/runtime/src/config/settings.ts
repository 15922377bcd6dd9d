import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  formatBytes, formatDuration, parseBoolean, parseContextSize, parseDuration, parseEnum, parseInteger, parseList, parsePath, parsePort, parseSize,
  parseStateUrl, parseString, parseUrl,
  type Parser,
} from "./parse.js";
import { findUp } from "./find-up.js";
import { parseRunnerCpus } from "../host/cpu-affinity.js";

export const GPU_CHOICES = ["auto", "cuda", "metal", "vulkan", "cpu"] as const;
export type GpuChoice = (typeof GPU_CHOICES)[number];
export const ROUTER_MODES = ["auto", "push", "poll"] as const;
export type RouterMode = (typeof ROUTER_MODES)[number];
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ["auto", "json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

interface SettingDef<T> {
  /** Environment variables, first found wins. */
  env: readonly string[];
  parse: Parser<T>;
  default: T | ((partial: { home: string }) => T);
  description: string;
  /** Never printed in full (API keys, tokens). */
  secret?: boolean;
  /** How `llmlb-node config` shows the value, in the notation the setting is written in. */
  show?: (value: T) => string;
  /** The file a default is read from: named as the value's source when it gave one. */
  defaultFile?: () => string;
}

const showDuration = (ms: number) => (ms < 0 ? "-1 (forever)" : formatDuration(ms));

const setting = <T>(def: SettingDef<T>): SettingDef<T> => def;

/** Where `huggingface-cli login` saves its token: $HF_HOME/token, default ~/.cache/huggingface/token. */
const hfTokenFile = () => path.join(process.env.HF_HOME ?? path.join(os.homedir(), ".cache", "huggingface"), "token");

/** The token `huggingface-cli login` saved, or "". */
function readHfTokenFile(): string {
  try {
    return fs.readFileSync(hfTokenFile(), "utf8").trim();
  } catch {
    return "";
  }
}

/**
 * Every setting of the node. Precedence: command-line flag (kebab-case of the key) > environment >
 * config file (same key, camelCase) > default. The README's configuration table is this list.
 */
export const SETTINGS = {
  home: setting({ env: ["LLMLB_HOME"], parse: parsePath, default: path.join(os.homedir(), ".llmlb"),
    description: "Where models, adapters, locks, the index and config.json live." }),
  host: setting({ env: ["LLMLB_HOST"], parse: parseString, default: "127.0.0.1",
    description: "Address both listeners bind to (0.0.0.0 to serve the network)." }),
  grpcPort: setting({ env: ["LLMLB_GRPC_PORT"], parse: parsePort, default: 50051,
    description: "gRPC (h2c) port." }),
  httpPort: setting({ env: ["LLMLB_HTTP_PORT"], parse: parsePort, default: 8080,
    description: "HTTP/1.1 port: Connect, /v0, /v1, dashboard, /metrics." }),
  apiKey: setting({ env: ["LLMLB_API_KEY"], parse: parseString, default: "", secret: true,
    description: "When set, `Authorization: Bearer <key>` is required on gRPC and HTTP (one admin key, labelled \"default\")." }),
  apiKeysFile: setting<string>({ env: ["LLMLB_API_KEYS_FILE"], parse: parsePath, default: "",
    description: "JSON file of API keys with labels and scopes (inference, read, admin); reloaded on SIGHUP. See SECURITY.md." }),
  allowedHosts: setting({ env: ["LLMLB_ALLOWED_HOSTS"], parse: parseList(parseString), default: [] as string[],
    description: "Host names served besides loopback names (comma-separated); when set, only these and loopback names are served." }),
  corsOrigins: setting({ env: ["LLMLB_CORS_ORIGINS"], parse: parseList(parseString), default: [] as string[],
    description: "Web origins allowed to call the API from a browser (comma-separated, e.g. https://ops.example); CORS is off when empty." }),
  tlsCert: setting<string>({ env: ["LLMLB_TLS_CERT"], parse: parsePath, default: "",
    description: "PEM certificate (chain): serve gRPC and HTTPS with TLS on the same ports; reloaded on SIGHUP." }),
  tlsKey: setting<string>({ env: ["LLMLB_TLS_KEY"], parse: parsePath, default: "",
    description: "PEM private key for LLMLB_TLS_CERT." }),
  tlsClientCa: setting<string>({ env: ["LLMLB_TLS_CLIENT_CA"], parse: parsePath, default: "",
    description: "PEM CA bundle: require client certificates signed by it (mutual TLS)." }),
  maxRequestBytes: setting({ env: ["LLMLB_MAX_REQUEST_BYTES"], parse: parseSize, default: 4 * 1024 * 1024, show: formatBytes,
    description: "Largest request body (gRPC, Connect, REST), compressed and decompressed (e.g. 8MiB)." }),
  headersTimeoutSeconds: setting({ env: ["LLMLB_HEADERS_TIMEOUT"], parse: parseInteger(1, 3600), default: 30,
    description: "Seconds a client may take to send the request headers." }),
  bodyTimeoutSeconds: setting({ env: ["LLMLB_BODY_TIMEOUT"], parse: parseInteger(1, 3600), default: 60,
    description: "Seconds a client may take to send a whole request (headers and body)." }),
  keepAliveTimeoutSeconds: setting({ env: ["LLMLB_KEEPALIVE_TIMEOUT"], parse: parseInteger(1, 3600), default: 65,
    description: "Seconds an idle HTTP/1.1 keep-alive connection stays open." }),
  idleTimeoutSeconds: setting({ env: ["LLMLB_IDLE_TIMEOUT"], parse: parseInteger(1, 86400), default: 300,
    description: "Seconds an HTTP/2 (gRPC) connection without open streams stays open." }),
  pingIntervalSeconds: setting({ env: ["LLMLB_PING_INTERVAL"], parse: parseInteger(1, 86400), default: 300,
    description: "Seconds of no traffic either way after which an HTTP/2 (gRPC) connection is pinged." }),
  pingTimeoutSeconds: setting({ env: ["LLMLB_PING_TIMEOUT"], parse: parseInteger(1, 3600), default: 20,
    description: "Seconds a pinged HTTP/2 (gRPC) connection has to answer, or move any byte; one that does not is closed with its calls." }),
  maxConcurrentStreams: setting({ env: ["LLMLB_MAX_CONCURRENT_STREAMS"], parse: parseInteger(1, 10000), default: 128,
    description: "Concurrent HTTP/2 streams (calls) per gRPC connection." }),
  maxStreamsPerClient: setting({ env: ["LLMLB_MAX_STREAMS_PER_CLIENT"], parse: parseInteger(1, 100000), default: 32,
    description: "Open watch/event streams (WatchModels, health Watch, SSE) per client address." }),
  maxStreams: setting({ env: ["LLMLB_MAX_STREAMS"], parse: parseInteger(1, 1000000), default: 1024,
    description: "Open watch/event streams in total." }),
  logLevel: setting<LogLevel>({ env: ["LLMLB_LOG_LEVEL"], parse: parseEnum(LOG_LEVELS), default: "info",
    description: "trace, debug, info, warn, error, fatal or silent." }),
  logFormat: setting<LogFormat>({ env: ["LLMLB_LOG_FORMAT"], parse: parseEnum(LOG_FORMATS), default: "auto",
    description: "json, pretty, or auto (pretty on a terminal, JSON otherwise)." }),
  supportedModels: setting({ env: ["LLMLB_SUPPORTED_MODELS"], parse: parsePath,
    default: () => findUp("supported_models.json") ?? path.resolve("supported_models.json"),
    description: "The curated model list (JSON, validated at start-up)." }),
  gpu: setting<GpuChoice>({ env: ["LLMLB_GPU"], parse: parseEnum(GPU_CHOICES), default: "auto",
    description: "auto, cuda, metal, vulkan or cpu." }),
  threads: setting({ env: ["LLMLB_THREADS"], parse: parseInteger(0, 1024), default: 0,
    description: "CPU threads per context; 0 picks one less than the number of cores." }),
  memoryBudget: setting({ env: ["LLMLB_MEMORY_BUDGET"], parse: parseSize, default: 0, show: (bytes) => (bytes === 0 ? "auto (80% of free memory at start)" : formatBytes(bytes)),
    description: "Memory for loaded models (e.g. 16GiB); 0 means 80% of free memory at start." }),
  parallelism: setting({ env: ["LLMLB_PARALLELISM"], parse: parseInteger(1, 64), default: 4,
    description: "Requests one model serves at once (context sequences)." }),
  contextSize: setting({ env: ["LLMLB_CONTEXT_SIZE"], parse: parseContextSize, default: 0, show: (tokens) => (tokens === 0 ? "auto" : String(tokens)),
    description: "Tokens per request (sequence) for models without their own context_length; auto (0) is the largest that fits the memory budget, up to the trained length." }),
  keepAlive: setting({ env: ["LLMLB_KEEP_ALIVE"], parse: parseDuration, default: 300_000, show: showDuration,
    description: "How long an idle model stays loaded (e.g. 5m, 30s, 1h; 0 unloads after each request, -1 keeps it); requests may override it with keep_alive." }),
  streamIntervalMs: setting({ env: ["LLMLB_STREAM_INTERVAL_MS"], parse: parseInteger(0, 1000), default: 30,
    description: "Shortest time in ms between two streamed deltas of one answer; text generated faster is joined into fewer, larger deltas (0 sends every token as it comes)." }),
  queueSize: setting({ env: ["LLMLB_QUEUE_SIZE"], parse: parseInteger(0, 100000), default: 64,
    description: "Requests that may wait per model before QUEUE_FULL." }),
  runnerCpus: setting({ env: ["LLMLB_RUNNER_CPUS"], parse: parseRunnerCpus, default: "",
    description: "CPUs the inference runner runs on (Linux, e.g. 1 or 1-7; needs taskset from util-linux); unset: any CPU. Keeps generation off the CPUs that serve the API; see CPU placement in the README." }),
  runnerCrashBackoffSeconds: setting({ env: ["LLMLB_RUNNER_CRASH_BACKOFF"], parse: parseInteger(0, 86400), default: 60,
    description: "Seconds a model whose load (or first request) crashed the inference runner is refused before one more try." }),
  runnerHangTimeout: setting({ env: ["LLMLB_RUNNER_HANG_TIMEOUT"], parse: parseDuration, default: 5_000, show: showDuration,
    description: "An inference runner that answers no heartbeat for this long (e.g. 5s) is killed and restarted; 0 or -1 never." }),
  runnerLoadHangTimeout: setting({ env: ["LLMLB_RUNNER_LOAD_HANG_TIMEOUT"], parse: parseDuration, default: 60_000, show: showDuration,
    description: "The same bound while a model or llama.cpp loads (both block the runner's thread for a while); a model load past it is a load crash." }),
  hfEndpoint: setting({ env: ["HF_ENDPOINT", "MODEL_ENDPOINT"], parse: parseUrl, default: "https://huggingface.co",
    description: "Hugging Face endpoint (mirrors, proxies, tests)." }),
  hfToken: setting({ env: ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"], parse: parseString, default: readHfTokenFile, defaultFile: hfTokenFile, secret: true,
    description: "Hugging Face token; sent only to the HF endpoint's host. Also read from ~/.cache/huggingface/token." }),
  routerUrls: setting({ env: ["LLMLB_ROUTER_URL"], parse: parseList(parseUrl), default: [] as string[],
    description: "Upstream llmlb routers or peer nodes (comma-separated) for the router-proxy source." }),
  routerApiKey: setting({ env: ["LLMLB_ROUTER_API_KEY"], parse: parseString, default: "", secret: true,
    description: "Bearer key sent to the routers." }),
  prefetch: setting({ env: ["LLMLB_PREFETCH"], parse: parseBoolean, default: false,
    description: "Sync with the router: at start and on each push, pull the models it lists (never deletes any)." }),
  routerMode: setting<RouterMode>({ env: ["LLMLB_ROUTER_MODE"], parse: parseEnum(ROUTER_MODES), default: "auto",
    description: "push: register with LLMLB_ROUTER_URL and heartbeat (llmlb ≤ 2.x); poll: only answer a router that polls (≥ 3.0); auto: try push, fall back to being polled." }),
  heartbeatIntervalSeconds: setting({ env: ["LLMLB_HEARTBEAT_INTERVAL"], parse: parseInteger(1, 3600), default: 10,
    description: "Seconds between heartbeats to a push-era router." }),
  advertiseHost: setting({ env: ["LLMLB_ADVERTISE_HOST"], parse: parseString, default: "",
    description: "Address the router should reach this node at (an IP; a host name is resolved once at start, IPv4 first, and the node does not register when it does not resolve); empty means LLMLB_HOST, or the first non-loopback IPv4 when that is 0.0.0.0." }),
  githubUrl: setting({ env: ["LLMLB_GITHUB_URL"], parse: parseUrl, default: "https://github.com",
    description: "GitHub (Enterprise) base URL for github: adapter references." }),
  githubToken: setting({ env: ["GITHUB_TOKEN"], parse: parseString, default: "", secret: true,
    description: "GitHub token; sent only to the GitHub host." }),
  extraModelDirs: setting({ env: ["LLMLB_EXTRA_MODEL_DIRS"], parse: parseList(parsePath, path.delimiter),
    default: [] as string[],
    description: `Read-only directories searched for model files (e.g. a Hugging Face cache), '${path.delimiter}'-separated.` }),
  downloadConnections: setting({ env: ["LLMLB_DOWNLOAD_CONNECTIONS"], parse: parseInteger(1, 32), default: 4,
    description: "Ranged connections per large file when the server supports ranges." }),
  downloadRetries: setting({ env: ["LLMLB_DOWNLOAD_RETRIES"], parse: parseInteger(0, 100), default: 8,
    description: "Retries per file on 408/429/5xx, resets and stalls (with backoff)." }),
  stallTimeoutSeconds: setting({ env: ["LLMLB_STALL_TIMEOUT"], parse: parseInteger(1, 3600), default: 30,
    description: "Seconds without a byte (or under 1 KiB/s over that long) before a transfer is retried from where it stopped." }),
  lockWaitTimeoutSeconds: setting({ env: ["LLMLB_LOCK_WAIT_TIMEOUT"], parse: parseInteger(1, 86400), default: 300,
    description: "Seconds to wait for another process's download of the same model." }),
  allowedPrivateHosts: setting({ env: ["LLMLB_ALLOWED_PRIVATE_HOSTS"], parse: parseList(parseString), default: [] as string[],
    description: "Host names a download redirect may lead to even when they are on a more private network than the server that redirected (private mirrors), comma-separated." }),
  maxDownloadSize: setting({ env: ["LLMLB_MAX_DOWNLOAD_SIZE"], parse: parseSize, default: 256 * 1024 ** 3, show: formatBytes,
    description: "Largest file downloaded when neither the source nor the catalog says its size (e.g. 64GiB)." }),
  diskReserve: setting({ env: ["LLMLB_DISK_RESERVE"], parse: parseSize, default: 512 * 1024 * 1024, show: formatBytes,
    description: "Free space always left on the disk (e.g. 2GiB)." }),
  pluginTimeoutSeconds: setting({ env: ["LLMLB_PLUGIN_TIMEOUT"], parse: parseInteger(1, 3600), default: 30,
    description: "Seconds a source provider may take to locate an artifact." }),
  runtimeUrl: setting<string>({ env: ["LLMLB_RUNTIME_URL"], parse: parseUrl, default: "",
    description: "Serve HTTP in front of a remote runtime over gRPC (e.g. http://10.0.0.5:50051) instead of in-process." }),
  stateUrl: setting({ env: ["LLMLB_STATE_URL"], parse: parseStateUrl, default: "", secret: true,
    description: "Shared state of a fleet: redis://host:6379 or postgres://user:pass@host/db; empty keeps state in <home>/node.db." }),
  advertiseUrl: setting<string>({ env: ["LLMLB_ADVERTISE_URL"], parse: parseUrl, default: "",
    description: "This node's base URL as other nodes of the fleet reach it; empty means http://<host>:<httpPort>." }),
} as const;

export type SettingKey = keyof typeof SETTINGS;
type ValueOf<K extends SettingKey> = (typeof SETTINGS)[K] extends SettingDef<infer T> ? T : never;
export type Settings = { -readonly [K in SettingKey]: ValueOf<K> };
