import { AsyncQueue } from "../events/async-queue.js";
import { linkedSignal } from "../events/linked-signal.js";
import type { ServiceImpl } from "@connectrpc/connect";
import { serviceNotFound } from "../errors/index.js";
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  Health,
} from "../gen/grpc/health/v1/health_pb.js";

/** grpc.health.v1.Health over a status that flips to NOT_SERVING when the node starts draining. */
export class HealthState {
  private serving = true;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly serviceNames: readonly string[]) {}

  setServing(serving: boolean): void {
    if (this.serving === serving) return;
    this.serving = serving;
    for (const listener of this.listeners) listener();
  }

  statusOf(service: string): ServingStatus | undefined {
    if (service !== "" && !this.serviceNames.includes(service)) return undefined;
    return this.serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get services(): readonly string[] {
    return ["", ...this.serviceNames];
  }
}

/**
 * The Health service. A Watch ends when the client cancels or `endStreams` aborts (the node
 * drains): its last message is the status then (NOT_SERVING), so a watcher learns why it ended.
 */
export function createHealthService(state: HealthState, endStreams: AbortSignal): ServiceImpl<typeof Health> {
  return {
    check(req) {
      const status = state.statusOf(req.service);
      if (status === undefined) throw serviceNotFound(req.service, state.services);
      return { status };
    },
    list() {
      return { statuses: Object.fromEntries(state.services.map((s) => [s, { status: state.statusOf(s)! }])) };
    },
    async *watch(req, ctx) {
      // As WatchModels: the queue stops at the client's cancel or the drain, whichever comes first.
      const stop = linkedSignal(ctx.signal, endStreams);
      const changes = new AsyncQueue<true>(stop.signal);
      const unsubscribe = state.onChange(() => changes.replaceLast(true));
      const statusNow = () => state.statusOf(req.service) ?? ServingStatus.SERVICE_UNKNOWN;
      try {
        let last: ServingStatus | undefined;
        do {
          const status = statusNow();
          if (status !== last) yield { status };
          last = status;
        } while (await changes.take());
        if (!ctx.signal.aborted && statusNow() !== last) yield { status: statusNow() };
      } finally {
        unsubscribe();
        changes.end();
        stop.dispose();
      }
    },
  };
}
