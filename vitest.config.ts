import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Our workspace packages export their TypeScript under the "source" condition; eventsource-parser
// (under the Vercel AI SDK) uses the same condition name for sources it does not ship compiled.
const built = (file: string) => fileURLToPath(new URL(`./node_modules/eventsource-parser/dist/${file}`, import.meta.url));

export default defineConfig({
  resolve: {
    conditions: ["source"],
    alias: [
      { find: /^eventsource-parser\/stream$/, replacement: built("stream.js") },
      { find: /^eventsource-parser$/, replacement: built("index.js") },
    ],
  },
  ssr: { resolve: { conditions: ["source"], externalConditions: ["source"] } },
  test: {
    include: ["packages/*/test/**/*.test.ts", "testkit/**/*.test.ts", "examples/*/test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Inlined, so the alias above applies to the AI SDK's own import of eventsource-parser.
    server: { deps: { inline: ["ai", /@ai-sdk\//] } },
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    reporters: ["default", "./testkit/summary-reporter.ts"],
  },
});
