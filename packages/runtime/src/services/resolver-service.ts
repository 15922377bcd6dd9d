import { AsyncQueue } from "../events/async-queue.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { LlmlbError } from "../errors/index.js";
import { ArtifactKind } from "../gen/llmlb/node/v1/model_pb.js";
import { ResolverService, type ResolveResponseSchema } from "../gen/llmlb/node/v1/resolver_pb.js";
import type { Resolver } from "../resolver/resolver.js";
import type { SourceChain } from "../resolver/source-chain.js";
import type { ResolveEvent, ResolveResult, ResolveTarget } from "../resolver/types.js";

type ResolveResponseInit = MessageInitShape<typeof ResolveResponseSchema>;

function toMessage(event: ResolveEvent): ResolveResponseInit {
  switch (event.type) {
    case "source-tried":
      return { event: { case: "sourceTried", value: { source: event.source } } };
    case "source-failed":
      return { event: { case: "sourceFailed", value: { source: event.source, reason: event.reason, code: event.code } } };
    case "lock-wait":
      return { event: { case: "lockWait", value: { holderPid: event.pid, holderHost: event.host } } };
    case "progress": {
      const p = event.progress;
      return {
        event: {
          case: "progress",
          value: {
            fraction: p.fraction,
            completedBytes: BigInt(Math.round(p.completedBytes)),
            totalBytes: BigInt(Math.round(p.totalBytes)),
            currentFile: p.currentFile,
            bytesPerSecond: p.bytesPerSecond,
            restarts: p.restarts ?? 0,
            restartReason: p.restartReason ?? "",
          },
        },
      };
    }
  }
}

function doneMessage(result: ResolveResult): ResolveResponseInit {
  return {
    event: {
      case: "done",
      value: { path: result.path, source: result.source, id: result.id, sizeBytes: BigInt(result.sizeBytes), sha256: result.sha256 },
    },
  };
}

/** ResolverService over the resolver: Resolve streams what happens, ListSources shows the chain. */
export function createResolverService(resolver: Resolver, sources: SourceChain): Partial<ServiceImpl<typeof ResolverService>> {
  return {
    async *resolve(req, ctx) {
      let target: ResolveTarget;
      if (req.target.case === "modelId") target = { modelId: req.target.value };
      else if (req.target.case === "adapterRef") target = { adapterRef: req.target.value };
      else throw new LlmlbError("INVALID_ARGUMENT", "set model_id (a catalog model) or adapter_ref (a LoRA adapter reference)");

      const queue = new AsyncQueue<ResolveResponseInit>();
      let failure: unknown;
      let result: ResolveResult | undefined;
      void resolver
        .resolve(target, { signal: ctx.signal, onEvent: (e) => queue.push(toMessage(e)) })
        .then(
          (r) => (result = r),
          (err: unknown) => (failure = err ?? new Error("resolve failed")),
        )
        .finally(() => queue.end());
      yield* queue;
      if (failure !== undefined) throw failure;
      yield doneMessage(result!);
    },

    async listSources() {
      return {
        sources: sources.sources.map((s) => ({
          name: s.name,
          priority: Math.round(s.priority),
          enabled: s.enabled,
          kinds: s.kinds.map((k) => (k === "model" ? ArtifactKind.MODEL : ArtifactKind.ADAPTER)),
          module: s.module,
        })),
      };
    },
  };
}
