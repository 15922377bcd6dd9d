import os from "node:os";

interface CpuTimes {
  idle: number;
  total: number;
}

function cpuTimes(): CpuTimes {
  let idle = 0;
  let total = 0;
  for (const cpu of os.cpus()) {
    const t = cpu.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.irq + t.idle;
  }
  return { idle, total };
}

/**
 * CPU and memory use of the host, from the OS. CPU use is measured between two calls (the first
 * call compares with the moment this sampler was created), so a caller polling every few seconds
 * gets the load over its own interval.
 */
export class HostLoad {
  private last = cpuTimes();

  cpuUsagePercent(): number {
    const now = cpuTimes();
    const total = now.total - this.last.total;
    const idle = now.idle - this.last.idle;
    this.last = now;
    if (total <= 0) return 0;
    return Math.min(100, Math.max(0, (1 - idle / total) * 100));
  }

  memory(): { totalBytes: number; usagePercent: number } {
    const total = os.totalmem();
    return { totalBytes: total, usagePercent: total > 0 ? Math.min(100, Math.max(0, (1 - os.freemem() / total) * 100)) : 0 };
  }
}
