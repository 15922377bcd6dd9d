import { defineConfig } from "tsup";

export default defineConfig({
  // The runner is its own entry: the node forks it (src/engine/runner/runner-process.ts finds it).
  entry: ["src/index.ts", "src/plugin/index.ts", "src/gen/**/*.ts", "src/engine/runner/runner-main.ts"],
  format: ["esm"],
  target: "node20",
  dts: false,
  sourcemap: true,
  clean: true,
  splitting: true,
});
