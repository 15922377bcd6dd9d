import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = fileURLToPath(new URL(".", import.meta.url));

/**
 * The dashboard page: plain TypeScript + DOM, bundled into packages/facade/dist/dashboard and served
 * by the facade at "/". Relative asset paths (base "./") keep it working behind a path-prefix proxy.
 */
export default defineConfig({
  root: here,
  base: "./",
  publicDir: false,
  logLevel: "warn",
  build: {
    outDir: fileURLToPath(new URL("../dist/dashboard", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    assetsDir: "assets",
    modulePreload: { polyfill: false },
    sourcemap: true,
    reportCompressedSize: false,
  },
});
