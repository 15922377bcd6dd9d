import type { NodeConfig } from "../config/index.js";
import { LlmlbError, isAbortError } from "../errors/index.js";
import type { Logger } from "../logging/index.js";
import type { ArtifactKind, ArtifactSpec, FleetView, LocateResult, SourceContext } from "../plugin/contract.js";
import type { LoadedSource } from "../plugin/loader.js";
import { MalformedResultError, validateLocateResult } from "../plugin/validate-result.js";
import type { HttpClient } from "../transfer/http-client.js";

/** Why a source could not supply an artifact. `notHere` marks a plain "I don't have it". */
export interface SourceFailure {
  source: string;
  code: string;
  reason: string;
  notHere: boolean;
  /** The source's own error, surfaced when it is the only real failure. */
  error?: LlmlbError;
}

/** Carries a SourceFailure out of locate(). */
export class SourceFailedError extends Error {
  constructor(readonly failure: SourceFailure) {
    super(failure.reason);
  }
}

export function failureOf(source: string, err: unknown): SourceFailure {
  if (err instanceof SourceFailedError) return err.failure;
  if (err instanceof LlmlbError) return { source, code: err.reason, reason: err.message, notHere: false, error: err };
  return { source, code: "SOURCE_ERROR", reason: `failed: ${(err as Error)?.message ?? String(err)}`, notHere: false };
}

class PluginTimeout extends Error {}

/**
 * The loaded providers in priority order, and the one way to call them: with a deadline, the
 * caller's signal, and a check of what they return. A provider that throws, hangs or answers
 * nonsense becomes a SourceFailure naming it; it never breaks the chain.
 */
export class SourceChain {
  constructor(
    readonly sources: readonly LoadedSource[],
    private readonly deps: { config: NodeConfig; logger: Logger; http: HttpClient; fleet?: FleetView | undefined },
  ) {}

  /** Enabled sources serving this kind, lowest priority first. */
  for(kind: ArtifactKind): LoadedSource[] {
    return this.sources.filter((s) => s.enabled && s.provider && s.kinds.includes(kind));
  }

  async locate(source: LoadedSource, spec: ArtifactSpec, signal: AbortSignal): Promise<LocateResult> {
    const provider = source.provider!;
    const seconds = this.deps.config.pluginTimeoutSeconds;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new PluginTimeout()), seconds * 1000);
    const ctx: SourceContext = {
      options: source.options,
      logger: this.deps.logger.child({ source: source.name }),
      fetch: this.deps.http.fetch,
      dispatcher: this.deps.http.dispatcher,
      signal: AbortSignal.any([signal, deadline.signal]),
      ...(this.deps.fleet ? { fleet: this.deps.fleet } : {}),
    };
    const stopped = new Promise<never>((_, reject) => {
      const onAbort = () => reject(ctx.signal.reason);
      if (ctx.signal.aborted) onAbort();
      else ctx.signal.addEventListener("abort", onAbort, { once: true });
    });
    stopped.catch(() => undefined);
    try {
      const answer = await Promise.race([Promise.resolve().then(() => provider.locate(spec, ctx)), stopped]);
      return validateLocateResult(answer);
    } catch (err) {
      if (signal.aborted) throw signal.reason ?? err;
      if (deadline.signal.aborted && (err instanceof PluginTimeout || isAbortError(err))) {
        throw new SourceFailedError({
          source: source.name, code: "PLUGIN_TIMEOUT", notHere: false,
          reason: `${source.name} did not answer within ${seconds} s (LLMLB_PLUGIN_TIMEOUT)`,
        });
      }
      if (err instanceof MalformedResultError) {
        throw new SourceFailedError({
          source: source.name, code: "PLUGIN_INVALID_RESULT", notHere: false,
          reason: `${source.name} returned an invalid answer: ${err.message}`,
        });
      }
      this.deps.logger.debug({ err, source: source.name }, "source failed");
      throw new SourceFailedError(failureOf(source.name, err));
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    for (const s of this.sources) {
      try {
        await s.provider?.close?.();
      } catch (err) {
        this.deps.logger.warn({ err, source: s.name }, "source failed to close");
      }
    }
  }
}
