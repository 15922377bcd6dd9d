import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../../..");

/** Every module specifier a file imports (static imports, re-exports, import() and import types). */
function importsOf(text: string): string[] {
  const found = new Set<string>();
  for (const re of [/\bfrom\s+["']([^"']+)["']/g, /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g, /^\s*import\s+["']([^"']+)["']/gm]) {
    for (const m of text.matchAll(re)) found.add(m[1]!);
  }
  return [...found];
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => /\.(ts|js|mjs)$/.test(f))
    .map((f) => path.join(dir, f));
}

/** The code blocks of a Markdown file. */
function codeBlocks(file: string): string {
  return [...fs.readFileSync(file, "utf8").matchAll(/```\w*\n([\s\S]*?)```/g)].map((m) => m[1]).join("\n");
}

const runtimeImports = (text: string) => importsOf(text).filter((s) => s.startsWith("@llmlb/runtime"));

describe("plugins use only @llmlb/runtime/plugin", () => {
  const files = [...sourceFiles(path.join(ROOT, "packages/plugins/src")), ...sourceFiles(path.join(ROOT, "examples/mirror-source/src"))];

  it("holds for the built-in sources and the example plugin", () => {
    expect(files.length).toBeGreaterThan(5);
    const offenders = files.flatMap((file) =>
      runtimeImports(fs.readFileSync(file, "utf8"))
        .filter((spec) => spec !== "@llmlb/runtime/plugin")
        .map((spec) => `${path.relative(ROOT, file)} imports ${spec}`),
    );
    expect(offenders).toEqual([]);
    const users = files.filter((file) => runtimeImports(fs.readFileSync(file, "utf8")).length > 0);
    expect(users.length).toBeGreaterThan(3);
  });

  it("holds for the examples in docs/plugins.md", () => {
    const specs = runtimeImports(codeBlocks(path.join(ROOT, "docs/plugins.md")));
    expect(specs).toContain("@llmlb/runtime/plugin");
    expect(specs.filter((spec) => spec !== "@llmlb/runtime/plugin")).toEqual([]);
  });

  it("finds an import of the whole runtime when there is one", () => {
    expect(runtimeImports('import { NodeRuntime } from "@llmlb/runtime";\nconst t = await import("@llmlb/runtime/gen/x");')).toEqual([
      "@llmlb/runtime",
      "@llmlb/runtime/gen/x",
    ]);
  });
});
