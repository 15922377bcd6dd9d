import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts", "src/*/index.ts"],
  format: ["esm"],
  target: "node20",
  dts: false,
  sourcemap: true,
  clean: true,
  splitting: true,
  // Plugins use the runtime that loads them, never a bundled copy.
  external: ["@llmlb/runtime"],
});
