import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort, waitForPort } from "./free-port.js";

const PG_ROOT = "/usr/lib/postgresql";

/** Debian's postgres binaries (/usr/lib/postgresql/<ver>/bin), newest version first. */
function pgBin(): string | undefined {
  if (!fs.existsSync(PG_ROOT)) return undefined;
  const versions = fs.readdirSync(PG_ROOT).filter((v) => fs.existsSync(path.join(PG_ROOT, v, "bin", "postgres")));
  versions.sort((a, b) => Number(b) - Number(a));
  return versions[0] && path.join(PG_ROOT, versions[0], "bin");
}

/** Why PostgreSQL tests cannot run here, or undefined when they can (CI installs Debian's postgresql). */
export function postgresMissing(): string | undefined {
  return pgBin() ? undefined : `no ${PG_ROOT}/<version>/bin/postgres: apt-get install postgresql (.ci/run installs it)`;
}

/** postgres refuses to run as root: as root, run it as the `postgres` user Debian's package creates. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
  return { uid, gid };
}

export interface PostgresServer {
  url: string;
  close(): Promise<void>;
}

/** A throwaway PostgreSQL cluster (initdb in a temp dir, trust auth) on 127.0.0.1 and a free port (or `port`). */
export async function startPostgres(options: { port?: number } = {}): Promise<PostgresServer> {
  const bin = pgBin();
  if (!bin) throw new Error(postgresMissing());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "llmlb-pg-"));
  const data = path.join(dir, "data");
  const user = runAs();
  if (user) fs.chownSync(dir, user.uid, user.gid);
  execFileSync(path.join(bin, "initdb"), ["-D", data, "-A", "trust", "-U", "llmlb", "--no-sync"], {
    stdio: "ignore",
    ...(user ?? {}),
  });
  const port = options.port ?? (await freePort());
  const child: ChildProcess = spawn(
    path.join(bin, "postgres"),
    ["-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
    { stdio: "ignore", ...(user ?? {}) },
  );
  await waitForPort(port, 20_000);
  const url = `postgres://llmlb@127.0.0.1:${port}/postgres`;
  await waitForQueries(url, 20_000);
  return {
    url,
    async close() {
      if (child.exitCode === null) {
        await new Promise<void>((resolve) => {
          child.once("exit", () => resolve());
          child.kill("SIGINT"); // fast shutdown
        });
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * PostgreSQL listens before it takes queries: until its start-up ends it refuses connections with
 * "the database system is starting up" (57P03). A test's first query must not meet that.
 */
async function waitForQueries(url: string, timeoutMs: number): Promise<void> {
  const pg = (await import("pg")).default;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    client.on("error", () => {});
    try {
      await client.connect();
      await client.query("SELECT 1");
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}
