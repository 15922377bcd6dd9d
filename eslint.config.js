import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/gen/**", "node_modules/**", ".test-tmp/**", "**/*.d.ts", "packages/facade/dashboard-dist/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" }],
      "@typescript-eslint/no-unsafe-function-type": "off",
    },
  },
  {
    files: ["packages/runtime/src/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [
        { group: ["@llmlb/plugins", "@llmlb/plugins/*", "@llmlb/facade", "@llmlb/facade/*"], message: "runtime imports neither plugins nor facade (README, Architecture: the layering)" },
      ] }],
    },
  },
  {
    files: ["packages/plugins/src/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        paths: [{ name: "@llmlb/runtime", message: "plugins use only @llmlb/runtime/plugin" }],
        patterns: [
          { group: ["@llmlb/facade", "@llmlb/facade/*"], message: "plugins never import the facade" },
          { group: ["@llmlb/runtime/*", "!@llmlb/runtime/plugin", "../../runtime/*", "../../../runtime/*"], message: "plugins use only @llmlb/runtime/plugin" },
        ],
      }],
    },
  },
);
