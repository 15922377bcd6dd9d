import { AsyncQueue } from "../events/async-queue.js";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
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

export function createHealthService(state: HealthState): ServiceImpl<typeof Health> {
  return {
    check(req) {
      const status = state.statusOf(req.service);
      if (status === undefined) throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      return { status };
    },
    list() {
      return { statuses: Object.fromEntries(state.services.map((s) => [s, { status: state.statusOf(s)! }])) };
    },
    async *watch(req, ctx) {
      const changes = new AsyncQueue<true>(ctx.signal);
      const unsubscribe = state.onChange(() => changes.replaceLast(true));
      try {
        let last: ServingStatus | undefined;
        do {
          const status = state.statusOf(req.service) ?? ServingStatus.SERVICE_UNKNOWN;
          if (status !== last) yield { status };
          last = status;
        } while (await changes.take());
      } finally {
        unsubscribe();
        changes.end();
      }
    },
  };
}
