/**
 * A verified download versus the floor of this machine. The Hugging Face stand-in (its own
 * process) serves one file over loopback (hub 302 → CDN); in the same run, alternating:
 *
 *   curl      curl -s -L -o <file> <resolve URL>          (transfer + write, no verification)
 *   openssl   openssl dgst -sha256 <file>                  (the fastest hasher here)
 *   ours      Resolve on a fresh home, in a child process  (transfer, sha256, fsync, atomic install);
 *             on the built packages when their dist is newer than their sources (npm run build),
 *             else on the sources through tsx (whose loader adds ~40 MB of RSS)
 *
 *   curl+sync the same, then `sync <file>` (fsync): what a durable download costs on this disk
 *
 *   download_ratio = median(ours) / max(median(curl), median(openssl)); target ≤ 1.10
 *   durable_ratio  = median(ours) / max(median(curl+sync), median(openssl)): ours fsyncs before it
 *                    installs, so on a slow disk this is the floor that applies
 *   download_peak_rss_mb = peak RSS of the Resolve process; target < 200
 *
 * BENCH_DOWNLOAD_MB (default 1024), BENCH_RUNS (3), BENCH_CONNECTIONS (4, LLMLB_DOWNLOAD_CONNECTIONS),
 * BENCH_DIR (where downloads are written; default bench/.data/work, the same disk as the source).
 *   node --conditions=source --import tsx bench/download.bench.ts
 */
import { spawn } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { median } from "./stats.js";
import { sizedModelHeader } from "../testkit/gguf/sized-gguf.js";

const MIB = 1 << 20;
const SIZE_MB = Number(process.env.BENCH_DOWNLOAD_MB ?? 1024);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 4);
const here = import.meta.dirname;
const dataDir = path.join(here, ".data");
const workDir = process.env.BENCH_DIR ?? path.join(dataDir, "work");
const tsx = ["--conditions=source", "--import", "tsx"];

/** The benchmark file (a valid GGUF of random tensor data), generated once and kept in bench/.data (gitignored), with its sha256. */
function ensureData(): { file: string; sha256: string } {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, `download-${SIZE_MB}MiB.gguf`);
  const shaFile = `${file}.sha256`;
  if (fs.existsSync(file) && fs.statSync(file).size === SIZE_MB * MIB && fs.existsSync(shaFile)) {
    return { file, sha256: fs.readFileSync(shaFile, "utf8").trim() };
  }
  const hash = createHash("sha256");
  const fd = fs.openSync(`${file}.tmp`, "w");
  const chunk = Buffer.alloc(8 * MIB);
  for (let written = 0; written < SIZE_MB * MIB; written += chunk.length) {
    randomFillSync(chunk);
    // A valid GGUF header first: the node installs only files that pass GGUF validation.
    if (written === 0) chunk.set(sizedModelHeader(SIZE_MB * MIB));
    const part = chunk.subarray(0, Math.min(chunk.length, SIZE_MB * MIB - written));
    fs.writeSync(fd, part);
    hash.update(part);
  }
  fs.closeSync(fd);
  fs.renameSync(`${file}.tmp`, file);
  const sha256 = hash.digest("hex");
  fs.writeFileSync(shaFile, sha256);
  return { file, sha256 };
}

function run(command: string, args: string[]): Promise<{ ms: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve({ ms: performance.now() - started, stdout }) : reject(new Error(`${command} exited ${code}`))));
  });
}

/** Newest modification time of the files under dir (0 when it does not exist). */
function newest(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  return (fs.readdirSync(dir, { recursive: true }) as string[]).reduce((t, f) => Math.max(t, fs.statSync(path.join(dir, f)).mtimeMs), 0);
}

/** How to start our Resolve: on the built packages when they are up to date, else on the sources. */
function oursCommand(): { args: string[]; runtime: "dist" | "source" } {
  const packages = path.join(here, "..", "packages");
  const built = ["runtime", "plugins"].every((p) => {
    const dist = newest(path.join(packages, p, "dist"));
    return dist > 0 && dist >= newest(path.join(packages, p, "src"));
  });
  const child = path.join(here, "download-child.mjs");
  return built ? { args: [child], runtime: "dist" } : { args: [...tsx, child], runtime: "source" };
}

const seconds = (ms: number) => (ms / 1000).toFixed(2);

async function main(): Promise<void> {
  const { file, sha256 } = ensureData();
  fs.mkdirSync(workDir, { recursive: true });
  const standin = spawn(process.execPath, [...tsx, path.join(here, "download-standin.ts"), file, sha256], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const first = await new Promise<string>((resolve, reject) => {
      createInterface({ input: standin.stdout! }).once("line", resolve);
      standin.once("exit", () => reject(new Error("the stand-in exited")));
    });
    const { url: hub } = JSON.parse(first) as { url: string };
    const resolveUrl = `${hub}/bench/download-GGUF/resolve/main/bench.gguf`;
    await run("openssl", ["dgst", "-sha256", file]); // warm the page cache for everyone

    const ours = oursCommand();
    const times = { curl: [] as number[], curlSync: [] as number[], openssl: [] as number[], ours: [] as number[] };
    const rss = { peak: [] as number[], before: [] as number[] };
    for (let r = 0; r < RUNS; r++) {
      const out = path.join(workDir, "curl.out");
      times.curl.push((await run("curl", ["-s", "-L", "-o", out, resolveUrl])).ms);
      if (fs.statSync(out).size !== SIZE_MB * MIB) throw new Error("curl got a different size");
      fs.rmSync(out);
      const fetched = await run("curl", ["-s", "-L", "-o", out, resolveUrl]);
      times.curlSync.push(fetched.ms + (await run("sync", [out])).ms);
      fs.rmSync(out);

      const dgst = await run("openssl", ["dgst", "-sha256", file]);
      if (!dgst.stdout.includes(sha256)) throw new Error("openssl disagrees on the sha256");
      times.openssl.push(dgst.ms);

      const home = fs.mkdtempSync(path.join(workDir, "home-"));
      try {
        const job = JSON.stringify({ home, endpoint: hub, connections: CONNECTIONS, sha256 });
        const got = JSON.parse((await run(process.execPath, [...ours.args, job])).stdout.trim()) as {
          ms: number; sha256: string; rssBeforeBytes: number; maxRssBytes: number;
        };
        if (got.sha256 !== sha256) throw new Error("our download has another sha256");
        times.ours.push(got.ms);
        rss.peak.push(got.maxRssBytes / MIB);
        rss.before.push(got.rssBeforeBytes / MIB);
      } finally {
        fs.rmSync(home, { recursive: true, force: true });
      }
    }
    const floor = Math.max(median(times.curl), median(times.openssl));
    const durableFloor = Math.max(median(times.curlSync), median(times.openssl));
    console.log(
      `download_ratio=${(median(times.ours) / floor).toFixed(3)} ours_s=${seconds(median(times.ours))} curl_s=${seconds(median(times.curl))} ` +
        `openssl_s=${seconds(median(times.openssl))} size_mib=${SIZE_MB} runs=${RUNS} connections=${CONNECTIONS}`,
    );
    console.log(
      `durable_ratio=${(median(times.ours) / durableFloor).toFixed(3)} curl_sync_s=${seconds(median(times.curlSync))} dir=${workDir}`,
    );
    console.log(
      `download_peak_rss_mb=${Math.max(...rss.peak).toFixed(1)} download_rss_before_resolve_mb=${median(rss.before).toFixed(1)} runtime=${ours.runtime} ` +
        `all_ours_s=${times.ours.map(seconds).join(",")} all_curl_s=${times.curl.map(seconds).join(",")}`,
    );
  } finally {
    standin.kill("SIGTERM");
  }
}

await main();
