/**
 * Switchable faults shared by the stand-ins. A fault is armed at run time, optionally scoped
 * (listener host, repo, file) and limited to the next N matching requests (`times`, default 1)
 * or "always". Two families:
 *
 * - request faults (failStatus, rateLimit): replace the whole response of the next matching request;
 * - body faults (dropAt, stall, corruptByte, throttle): act on file-content bodies (HF hub small
 *   files, HF CDN, GitHub asset host, router blobs). Offsets are ABSOLUTE file offsets unless
 *   `relative: true` (then counted from the first body byte of the response, i.e. the range start).
 *   An offset-based fault only fires on (and is only consumed by) a GET whose byte range contains
 *   the offset; HEAD requests and ranges that end before the offset leave it armed.
 */

export type Times = number | "always";

export interface FaultScope {
  /** Only requests answered by this listener ("hub" | "cdn", "github" | "assets", "router"). */
  host?: string;
  /** Only this repo (HF "org/name", GitHub "owner/name"). */
  repoId?: string;
  /** Only this file: HF path in repo, GitHub asset name, router model id. */
  path?: string;
  /** How many matching requests the fault affects (default 1; throttle defaults to "always"). */
  times?: Times;
}

export interface BodyFaultScope extends FaultScope {
  /** Count the offset from the range start of each response instead of from file offset 0. */
  relative?: boolean;
}

/** What a request is about, for scope matching. */
export interface FaultTarget {
  host: string;
  repoId?: string | undefined;
  path?: string | undefined;
}

export type FaultKind = "drop" | "stall" | "corrupt" | "throttle" | "status" | "rateLimit" | "overstate" | "chunked";

export interface FaultHandle {
  readonly kind: FaultKind;
  /** Remaining uses ("always" for unlimited); 0 once used up or removed. */
  readonly remaining: Times;
  /** How many responses this fault has affected. */
  readonly hits: number;
  readonly active: boolean;
  remove(): void;
}

interface Fault extends FaultHandle {
  kind: FaultKind;
  remaining: Times;
  hits: number;
  scope: BodyFaultScope;
  /** drop/stall/corrupt: offset; status: HTTP status; rateLimit: reset seconds; throttle: bytes/s. */
  value: number;
  /** stall duration in ms (Infinity = forever). */
  ms: number;
}

export type RequestFault = { kind: "status"; status: number } | { kind: "rateLimit"; resetSeconds: number };

/** Absolute offsets at which the body of one response is disturbed. */
export interface BodyPlan {
  /** Cut the connection once bytes before this absolute offset were sent. */
  drop?: number;
  /** Pause before sending the byte at `at` (absolute), for `ms` (Infinity = until the connection closes). */
  stalls: { at: number; ms: number }[];
  /** Absolute offsets of bytes to flip (XOR 0xff). */
  corrupt: number[];
  /** Pace the body at this many bytes per second. */
  bytesPerSecond?: number;
  /** Content-Length claims this many bytes more than the body; the connection is cut after the body. */
  overstateBy?: number;
  /** Send the body chunked (Transfer-Encoding: chunked, no Content-Length). */
  chunked?: boolean;
}

export class Faults {
  private list: Fault[] = [];

  private add(kind: FaultKind, value: number, scope: BodyFaultScope | undefined, defaultTimes: Times, ms = 0): FaultHandle {
    const times = scope?.times ?? defaultTimes;
    if (times !== "always" && (!Number.isInteger(times) || times < 1)) throw new RangeError(`times must be a positive integer or "always"`);
    const list = this.list;
    const f: Fault = {
      kind,
      value,
      ms,
      scope: { ...scope },
      remaining: times,
      hits: 0,
      get active() {
        return list.includes(f);
      },
      remove() {
        const i = list.indexOf(f);
        if (i >= 0) list.splice(i, 1);
        f.remaining = 0;
      },
    };
    list.push(f);
    return f;
  }

  /** Cut the connection (FIN after flushing) once the body has reached byte `offset`. */
  dropAt(offset: number, scope?: BodyFaultScope): FaultHandle {
    assertOffset(offset);
    return this.add("drop", offset, scope, 1);
  }

  /** Stop sending for `ms` (or "forever": until the client or close() ends the connection) at byte `offset`. */
  stall(offset: number, ms: number | "forever", scope?: BodyFaultScope): FaultHandle {
    assertOffset(offset);
    return this.add("stall", offset, scope, 1, ms === "forever" ? Infinity : ms);
  }

  /** The next response's Content-Length claims `extraBytes` more than its body; the whole body is sent, then the connection is cut. */
  overstateLength(extraBytes: number, scope?: FaultScope): FaultHandle {
    if (!Number.isInteger(extraBytes) || extraBytes < 1) throw new RangeError("extraBytes must be a positive integer");
    return this.add("overstate", extraBytes, scope, 1);
  }

  /** The next response is sent chunked, without a Content-Length (combine with dropAt to cut it mid-chunk). */
  chunked(scope?: FaultScope): FaultHandle {
    return this.add("chunked", 0, scope, 1);
  }

  /** Flip (XOR 0xff) the byte at `offset` in what is sent. */
  corruptByte(offset: number, scope?: BodyFaultScope): FaultHandle {
    assertOffset(offset);
    return this.add("corrupt", offset, scope, 1);
  }

  /** Pace file bodies at `bytesPerSecond` per response (default: every response, "always"). `null` removes all throttles. */
  throttle(bytesPerSecond: number | null, scope?: FaultScope): FaultHandle | undefined {
    if (bytesPerSecond === null) {
      for (const f of this.list.filter((x) => x.kind === "throttle")) f.remove();
      return undefined;
    }
    if (!(bytesPerSecond > 0)) throw new RangeError("bytesPerSecond must be > 0");
    return this.add("throttle", bytesPerSecond, scope, "always");
  }

  /** The next `n` matching requests get `status` (e.g. 500, 502, 503, 408) with a small error body. */
  failStatus(status: number, n: Times = 1, scope?: FaultScope): FaultHandle {
    return this.add("status", status, { ...scope, times: n }, n);
  }

  /** The next `n` matching requests get 429 with RateLimit headers announcing `resetSeconds`. */
  rateLimit(n: Times = 1, resetSeconds = 55, scope?: FaultScope): FaultHandle {
    return this.add("rateLimit", resetSeconds, { ...scope, times: n }, n);
  }

  /** Remove every armed fault. */
  clear(): void {
    for (const f of [...this.list]) f.remove();
  }

  /** Currently armed faults. */
  armed(): FaultHandle[] {
    return [...this.list];
  }

  /** Consumes and returns the first matching request fault, if any. */
  takeRequestFault(target: FaultTarget): RequestFault | undefined {
    for (const f of this.list) {
      if ((f.kind !== "status" && f.kind !== "rateLimit") || !matches(f.scope, target)) continue;
      this.consume(f);
      return f.kind === "status" ? { kind: "status", status: f.value } : { kind: "rateLimit", resetSeconds: f.value };
    }
    return undefined;
  }

  /**
   * Plans the body faults for a GET sending bytes [start, endExclusive) of a file, consuming the
   * faults that will fire. Returns undefined when the body is undisturbed (fast path).
   */
  planBody(target: FaultTarget, start: number, endExclusive: number): BodyPlan | undefined {
    if (this.list.length === 0) return undefined;
    const abs = (f: Fault) => (f.scope.relative ? start + f.value : f.value);
    const inRange = (f: Fault) => abs(f) >= start && abs(f) < endExclusive;
    const candidates = this.list.filter((f) => matches(f.scope, target));
    if (candidates.length === 0) return undefined;
    let drop: Fault | undefined;
    for (const f of candidates) {
      if (f.kind === "drop" && inRange(f) && (!drop || abs(f) < abs(drop))) drop = f;
    }
    const limit = drop ? abs(drop) : endExclusive;
    const plan: BodyPlan = { stalls: [], corrupt: [] };
    const used: Fault[] = [];
    if (drop) {
      plan.drop = abs(drop);
      used.push(drop);
    }
    for (const f of candidates) {
      if (f.kind === "stall" && inRange(f) && abs(f) <= limit) {
        plan.stalls.push({ at: abs(f), ms: f.ms });
        used.push(f);
      } else if (f.kind === "corrupt" && inRange(f) && abs(f) < limit) {
        plan.corrupt.push(abs(f));
        used.push(f);
      } else if (f.kind === "throttle" && plan.bytesPerSecond === undefined && endExclusive > start) {
        plan.bytesPerSecond = f.value;
        used.push(f);
      } else if (f.kind === "overstate" && plan.overstateBy === undefined) {
        plan.overstateBy = f.value;
        used.push(f);
      } else if (f.kind === "chunked" && !plan.chunked) {
        plan.chunked = true;
        used.push(f);
      }
    }
    if (used.length === 0) return undefined;
    for (const f of used) this.consume(f);
    plan.stalls.sort((a, b) => a.at - b.at);
    plan.corrupt.sort((a, b) => a - b);
    return plan;
  }

  private consume(f: Fault): void {
    f.hits++;
    if (f.remaining === "always") return;
    f.remaining--;
    if (f.remaining <= 0) f.remove();
  }
}

function matches(scope: FaultScope, t: FaultTarget): boolean {
  if (scope.host !== undefined && scope.host !== t.host) return false;
  if (scope.repoId !== undefined && scope.repoId !== t.repoId) return false;
  if (scope.path !== undefined && scope.path !== t.path) return false;
  return true;
}

function assertOffset(n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError("offset must be a non-negative integer");
}

/** The fault-control methods every stand-in exposes, bound to one Faults instance. */
export interface FaultControls {
  readonly faults: Faults;
  dropAt(offset: number, scope?: BodyFaultScope): FaultHandle;
  stall(offset: number, ms: number | "forever", scope?: BodyFaultScope): FaultHandle;
  corruptByte(offset: number, scope?: BodyFaultScope): FaultHandle;
  overstateLength(extraBytes: number, scope?: FaultScope): FaultHandle;
  chunked(scope?: FaultScope): FaultHandle;
  throttle(bytesPerSecond: number | null, scope?: FaultScope): FaultHandle | undefined;
  failStatus(status: number, n?: Times, scope?: FaultScope): FaultHandle;
  rateLimit(n?: Times, resetSeconds?: number, scope?: FaultScope): FaultHandle;
  clearFaults(): void;
}

/** Builds the bound controls; `rateLimitDefaults` scopes rateLimit (e.g. HF: only the hub). */
export function faultControls(faults: Faults, rateLimitDefaults: FaultScope = {}): FaultControls {
  return {
    faults,
    dropAt: (o, s) => faults.dropAt(o, s),
    stall: (o, ms, s) => faults.stall(o, ms, s),
    corruptByte: (o, s) => faults.corruptByte(o, s),
    overstateLength: (n, s) => faults.overstateLength(n, s),
    chunked: (s) => faults.chunked(s),
    throttle: (b, s) => faults.throttle(b, s),
    failStatus: (st, n, s) => faults.failStatus(st, n, s),
    rateLimit: (n, r, s) => faults.rateLimit(n, r, { ...rateLimitDefaults, ...s }),
    clearFaults: () => faults.clear(),
  };
}
