/** Sorted, merged, half-open byte ranges [start, end) of a file that are on disk. */
export class Intervals {
  private ranges: Array<[number, number]> = [];

  constructor(initial: ReadonlyArray<readonly [number, number]> = []) {
    for (const [start, end] of initial) this.add(start, end);
  }

  add(start: number, end: number): void {
    if (!(end > start)) return;
    const out: Array<[number, number]> = [];
    let merged: [number, number] = [start, end];
    let placed = false;
    for (const r of this.ranges) {
      if (r[1] < merged[0]) out.push(r);
      else if (r[0] > merged[1]) {
        if (!placed) {
          out.push(merged);
          placed = true;
        }
        out.push(r);
      } else merged = [Math.min(r[0], merged[0]), Math.max(r[1], merged[1])];
    }
    if (!placed) out.push(merged);
    this.ranges = out;
  }

  clear(): void {
    this.ranges = [];
  }

  /** Total bytes covered. */
  get total(): number {
    return this.ranges.reduce((n, [s, e]) => n + (e - s), 0);
  }

  /** End of the contiguous range starting at 0 (0 when byte 0 is missing). */
  get prefixEnd(): number {
    const first = this.ranges[0];
    return first && first[0] === 0 ? first[1] : 0;
  }

  /** The gaps within [0, size). */
  missing(size: number): Array<[number, number]> {
    const gaps: Array<[number, number]> = [];
    let pos = 0;
    for (const [s, e] of this.ranges) {
      if (s >= size) break;
      if (s > pos) gaps.push([pos, s]);
      pos = Math.max(pos, e);
    }
    if (pos < size) gaps.push([pos, size]);
    return gaps;
  }

  toJSON(): Array<[number, number]> {
    return this.ranges.map(([s, e]) => [s, e]);
  }
}
