/**
 * The REST shapes the page reads. They mirror packages/facade/src/http/v0/model-json.ts (the server's
 * `modelJson`); the dashboard test drives a real node, so a drift shows up there.
 */
export type ModelStateName = "available" | "downloading" | "ready" | "loaded" | "failed" | "unsupported" | "unspecified";

export interface ProgressJson {
  fraction: number;
  completed_bytes: number;
  total_bytes: number;
  current_file: string;
  bytes_per_second: number;
  restarts: number;
  restart_reason: string | null;
}

export interface HubInfoJson {
  downloads: number;
  likes: number;
  fetched_at: string | null;
}

export interface LocalCopyJson {
  path: string;
  size_on_disk_bytes: number;
  downloaded_at: string | null;
  revision: string;
  source: string;
  /** Every file matched a sha256 known before the download; false: only sizes were checked. */
  verified: boolean;
}

export interface ModelJson {
  id: string;
  display_name: string;
  description: string;
  repo: string;
  filename: string;
  files: string[];
  size_bytes: number;
  required_memory_bytes: number;
  tags: string[];
  capabilities: string[];
  quantization: string | null;
  /** As the catalog gave it: a number, or the router's text ("7B"). */
  parameter_count: number | string | null;
  format: string;
  engine: string | null;
  platforms: string[];
  unsupported_reason: string | null;
  /** Tokens per request set for this model; null: the node's LLMLB_CONTEXT_SIZE decides at load. */
  context_length: number | null;
  revision: string;
  origin: "supported" | "registered" | "unspecified";
  state: ModelStateName;
  progress: ProgressJson | null;
  failure_reason: string | null;
  hub_info: HubInfoJson | null;
  local: LocalCopyJson | null;
}

export interface ListModelsJson {
  models: ModelJson[];
  next_page_token: string | null;
  total_size: number;
}

export interface RegisterRequestJson {
  repo: string;
  filename?: string;
  display_name?: string;
  capabilities?: string[];
}

export interface RegisterResponseJson {
  model: ModelJson | null;
  warnings: string[];
  available_files: string[];
}

export interface PullResponseJson {
  model_id: string;
  status: "started" | "joined" | "ready";
  model?: ModelJson;
}

export interface DeleteResponseJson {
  model: ModelJson | null;
  freed_bytes: number;
}

/** `{"error":{message,type,param,code}}`, the body of every 4xx/5xx. */
export interface ErrorBodyJson {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export const isDownloaded = (m: ModelJson): boolean => m.state === "ready" || m.state === "loaded";

/** GET /v0/loaded: one model in memory. */
export interface LoadedModelJson {
  id: string;
  memory_bytes: number;
  context_length: number;
  parallel_slots: number;
  active_requests: number;
  queued_requests: number;
  /** The generation contexts it holds, one per adapter set ("" without adapters). */
  adapter_sets: string[];
  expires_at: string | null;
}

export interface LoadedListJson {
  models: LoadedModelJson[];
  memory_budget_bytes: number;
}

/** One chunk of a streamed /v1/chat/completions answer. */
export interface ChatChunkJson {
  choices: Array<{ delta: { content?: string }; finish_reason: string | null }>;
  usage?: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details?: { cached_tokens: number } } | null;
  error?: { message: string };
}
