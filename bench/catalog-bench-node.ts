/**
 * The node under test of catalog.bench.ts, in its own process so the benchmark's clients do not
 * share its event loop. Configured by the environment (LLMLB_HOME, HF_ENDPOINT,
 * LLMLB_SUPPORTED_MODELS); prints {"grpcUrl"} on stdout once serving, stops on SIGTERM.
 */
import { startTestNode } from "../testkit/node/index.js";

const env = Object.fromEntries(
  ["LLMLB_HOME", "HF_ENDPOINT", "LLMLB_SUPPORTED_MODELS"].map((k) => [k, process.env[k] ?? ""]),
);
const node = await startTestNode(env);
process.stdout.write(`${JSON.stringify({ grpcUrl: node.grpcUrl })}\n`);
process.on("message", (message) => {
  if (message === "cpu") {
    const { user, system } = process.cpuUsage();
    process.send?.({ cpuMicros: user + system });
  }
});
process.once("SIGTERM", () => {
  void node.stop().finally(() => process.exit(0));
});
