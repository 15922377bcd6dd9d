/**
 * One Resolve of the benchmark file on a fresh home, in its own process so that its peak RSS is
 * ours alone. Plain JavaScript, so it runs on the built packages (node bench/download-child.mjs) as
 * a node would, or on the sources (node --conditions=source --import tsx …).
 * Prints {"ms", "sha256", "rssBeforeBytes", "maxRssBytes"}.
 */
import { performance } from "node:perf_hooks";
import process from "node:process";
import { builtinSourceDefaults } from "@llmlb/plugins";
import { loadConfig, openResolverStack, silentLogger, staticModelDirectory } from "@llmlb/runtime";

const job = JSON.parse(process.argv[2]);
const config = loadConfig({
  env: { LLMLB_HOME: job.home, HF_ENDPOINT: job.endpoint, LLMLB_DOWNLOAD_CONNECTIONS: String(job.connections), LLMLB_DISK_RESERVE: "0", LLMLB_LOG_LEVEL: "silent" },
});
const models = staticModelDirectory([
  {
    id: "bench", displayName: "bench", description: "", repo: "bench/download-GGUF", files: ["bench.gguf"], sha256: job.sha256,
    tags: [], capabilities: ["text-generation"], format: "gguf", origin: "supported",
  },
]);
const stack = await openResolverStack({ config, logger: silentLogger(), models, sourceDefaults: builtinSourceDefaults(config) });
const rssBeforeBytes = process.memoryUsage().rss;
const started = performance.now();
const result = await stack.resolver.resolve({ modelId: "bench" });
const ms = performance.now() - started;
await stack.close();
process.stdout.write(`${JSON.stringify({ ms, sha256: result.sha256, rssBeforeBytes, maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`);
