import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply } from "fastify";

export interface DashboardOptions {
  /** The built page (index.html + assets/); default: this package's dist/dashboard. */
  dir?: string;
}

/**
 * The page never loads anything but its own files and talks only to this node. `style-src 'self'`
 * still allows the CSSOM writes the page makes (progress bar widths).
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const PAGE_HEADERS = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
} as const;

/**
 * Where `vite build --config dashboard/vite.config.ts` writes the page: `<package>/dist/dashboard`.
 * The package root is the nearest directory with a package.json above this module, which is
 * `src/http/` when run from source and `dist/` when bundled by tsup.
 */
export function defaultDashboardDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "package.json"))) return path.join(dir, "dist", "dashboard");
    if (path.dirname(dir) === dir) return path.join(here, "dashboard");
  }
}

const NOT_BUILT_PAGE = (dir: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>llmlb node — dashboard not built</title>
<style>body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1b1f24}
code{font:0.9em ui-monospace,Menlo,Consolas,monospace;background:#f0f2f5;padding:0.1em 0.35em;border-radius:4px}</style></head>
<body><h1>The dashboard has not been built</h1>
<p>This node is running, but the page was not found in <code>${escapeHtml(dir)}</code>.</p>
<p>Build it with <code>npm run build</code> (or <code>npm run build -w @llmlb/facade</code>) and restart the node.
The API under <code>/v0</code> and <code>/v1</code> works without it.</p></body></html>
`;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * GET / serves the dashboard (index.html, never cached, with a strict CSP) and /assets/* its
 * content-hashed files (cached for a year). If the page was not built, GET / answers 503 with a page
 * that says how to build it. The page itself is public; the API calls it makes need the API key.
 */
export async function registerDashboardRoutes(app: FastifyInstance, options: DashboardOptions = {}): Promise<void> {
  const dir = path.resolve(options.dir ?? defaultDashboardDir());
  const built = fs.existsSync(path.join(dir, "index.html")) && fs.existsSync(path.join(dir, "assets"));

  if (!built) {
    app.log.warn({ dir }, "dashboard not built: GET / answers 503 (run `npm run build -w @llmlb/facade`)");
    app.get("/", async (_request, reply) =>
      reply.code(503).headers({ "cache-control": "no-store", ...PAGE_HEADERS }).type("text/html; charset=utf-8").send(NOT_BUILT_PAGE(dir)),
    );
    return;
  }

  await app.register(fastifyStatic, {
    root: path.join(dir, "assets"),
    prefix: "/assets/",
    index: false,
    list: false,
    dotfiles: "deny",
    immutable: true,
    maxAge: "365d",
    decorateReply: true,
    setHeaders: (res) => res.setHeader("x-content-type-options", "nosniff"),
  });

  const sendIndex = (reply: FastifyReply) =>
    reply.headers({ "cache-control": "no-cache", ...PAGE_HEADERS }).sendFile("index.html", dir, { cacheControl: false });
  app.get("/", async (_request, reply) => sendIndex(reply));
  app.get("/index.html", async (_request, reply) => sendIndex(reply));
}
