import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts", "src/cli.ts"],
  format: ["esm"],
  target: "node20",
  sourcemap: true,
  clean: true,
  splitting: true,
  banner: { js: "" },
});
