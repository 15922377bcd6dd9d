import { readSse } from "./sse.js";
import type {
  ChatChunkJson,
  DeleteResponseJson,
  LoadedListJson,
  ErrorBodyJson,
  ListModelsJson,
  ModelJson,
  PullResponseJson,
  RegisterRequestJson,
  RegisterResponseJson,
} from "./types.js";

const KEY_STORAGE = "llmlb.apiKey";

/** A non-2xx answer: the status and the fields of the OpenAI-shaped error body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** Asks the user for the API key; resolves null when they decline. */
export type KeyPrompt = (reason: "missing" | "invalid") => Promise<string | null>;

const encodeId = (id: string) => id.split("/").map(encodeURIComponent).join("/");

function isErrorBody(value: unknown): value is ErrorBodyJson {
  if (typeof value !== "object" || value === null || !("error" in value)) return false;
  const error = (value as { error: unknown }).error;
  return typeof error === "object" && error !== null && typeof (error as { message?: unknown }).message === "string";
}

async function errorOf(res: Response): Promise<ApiError> {
  const body: unknown = await res.json().catch(() => null);
  if (isErrorBody(body)) return new ApiError(res.status, body.error.message, body.error.param, body.error.code);
  return new ApiError(res.status, `${res.status} ${res.statusText || "request failed"}`);
}

/**
 * The node's /v0 API. Every request carries the API key when one is known. On a 401 the user is asked
 * for the key once (concurrent 401s share one dialog), it is kept in sessionStorage for this tab and
 * the request is retried. If the user declines, nothing asks again until `requestKey()` is called.
 */
export class Api {
  private key: string | null;
  private asking: Promise<string | null> | null = null;
  private declined = false;
  private readonly keyListeners = new Set<() => void>();

  constructor(
    private readonly base: URL,
    private readonly prompt: KeyPrompt,
  ) {
    this.key = sessionStorage.getItem(KEY_STORAGE);
  }

  /** Whether the last 401 was declined (the page then shows how to enter the key). */
  get locked(): boolean {
    return this.declined;
  }

  /** Called after a new key was accepted from the user. */
  onKeyChange(listener: () => void): () => void {
    this.keyListeners.add(listener);
    return () => this.keyListeners.delete(listener);
  }

  /** Opens the key dialog on the user's request (after they declined it once). */
  async requestKey(): Promise<boolean> {
    this.declined = false;
    return (await this.askForKey(this.key ? "invalid" : "missing", this.key)) !== null;
  }

  /** fetch() relative to the page, with the key and the 401 → ask → retry loop. */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    for (;;) {
      const usedKey = this.key;
      const headers = new Headers(init.headers);
      if (usedKey) headers.set("authorization", `Bearer ${usedKey}`);
      const res = await fetch(new URL(path, this.base), { ...init, headers });
      if (res.status !== 401) return res;
      const key = await this.askForKey(usedKey ? "invalid" : "missing", usedKey);
      if (key === null) return res;
    }
  }

  private askForKey(reason: "missing" | "invalid", usedKey: string | null): Promise<string | null> {
    // Another request already obtained a newer key: retry with it.
    if (this.key !== usedKey) return Promise.resolve(this.key);
    if (this.declined) return Promise.resolve(null);
    this.asking ??= this.prompt(reason).then((key) => {
      this.asking = null;
      if (key === null) {
        this.declined = true;
        return null;
      }
      this.key = key;
      sessionStorage.setItem(KEY_STORAGE, key);
      for (const listener of this.keyListeners) listener();
      return key;
    });
    return this.asking;
  }

  private async json<T>(path: string, init: RequestInit = {}): Promise<T> {
    const res = await this.fetch(path, init);
    if (!res.ok) throw await errorOf(res);
    return (await res.json()) as T;
  }

  private send<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.json<T>(path, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
    });
  }

  /** Every model, following next_page_token. */
  async listModels(): Promise<ModelJson[]> {
    const models: ModelJson[] = [];
    let token: string | null = null;
    do {
      const query = new URLSearchParams({ page_size: "1000" });
      if (token) query.set("page_token", token);
      const page: ListModelsJson = await this.json<ListModelsJson>(`v0/models?${query.toString()}`);
      models.push(...page.models);
      token = page.next_page_token;
    } while (token);
    return models;
  }

  pull(id: string): Promise<PullResponseJson> {
    return this.send("POST", `v0/models/${encodeId(id)}/pull`);
  }

  deleteModel(id: string, removeRegistration: boolean): Promise<DeleteResponseJson> {
    return this.send("DELETE", `v0/models/${encodeId(id)}${removeRegistration ? "?remove_registration=true" : ""}`);
  }

  register(body: RegisterRequestJson): Promise<RegisterResponseJson> {
    return this.send("POST", "v0/models/register", body);
  }

  listLoaded(): Promise<LoadedListJson> {
    return this.json<LoadedListJson>("v0/loaded", { cache: "no-store" });
  }

  unload(id: string): Promise<{ unloaded: boolean }> {
    return this.send("POST", `v0/models/${encodeId(id)}/unload`);
  }

  /** Streams a chat answer (OpenAI SSE chunks, usage last); aborting `signal` stops generation on the node. */
  async *chat(body: { model: string; messages: Array<{ role: string; content: string }>; temperature: number; max_tokens?: number }, signal: AbortSignal): AsyncGenerator<ChatChunkJson> {
    const res = await this.fetch("v1/chat/completions", {
      method: "POST",
      signal,
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    });
    if (!res.ok || !res.body) throw await errorOf(res);
    for await (const message of readSse(res.body)) {
      if (message.data === "[DONE]") return;
      const chunk = JSON.parse(message.data) as ChatChunkJson;
      if (chunk.error) throw new ApiError(500, chunk.error.message);
      yield chunk;
    }
  }

  /** Opens the global change feed (an SSE response) or throws ApiError. */
  async openEvents(signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const res = await this.fetch("v0/events", { signal, headers: { accept: "text/event-stream" }, cache: "no-store" });
    if (!res.ok || !res.body) throw await errorOf(res);
    return res.body;
  }
}
