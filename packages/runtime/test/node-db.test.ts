import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Store } from "../src/index.js";
import { openNodeDb } from "../src/db/node-db.js";
import { runCli, tempDir } from "../../../testkit/node/index.js";
import { startTinyWorld, TINY_CHAT_FILE, TINY_REPO } from "../../../testkit/world/tiny-world.js";
import { captureLogger, failure, sha256 } from "./resolver-world.js";

/** The CLI in a child process, logging at info (the warnings about node.db are asserted). */
const cli = (args: string[]) => runCli(args, { LLMLB_LOG_LEVEL: "info" });

/** Installs a model the way the resolver does: verified files moved in from the partial directory. */
async function install(store: Store, id: string, content: string) {
  const partial = store.models.partialDir(id);
  fs.mkdirSync(partial, { recursive: true });
  const from = path.join(partial, "m.gguf.part");
  fs.writeFileSync(from, content);
  return store.installModel(id, [{ name: "m.gguf", from, size: content.length, sha256: sha256(Buffer.from(content)) }], {
    source: "huggingface", downloaded_at: "2025-01-02T03:04:05.000Z", display_name: id, repo: "org/repo", revision: "a".repeat(40),
  });
}


describe("a corrupt node.db", () => {
  let home: { dir: string; cleanup: () => void };
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  beforeEach(() => {
    home = tempDir("llmlb-nodedb-");
    unhandled.length = 0;
    process.on("unhandledRejection", onUnhandled);
  });
  afterEach(() => {
    process.off("unhandledRejection", onUnhandled);
    home.cleanup();
  });

  it.each([
    ["random bytes (SQLITE_NOTADB)", (db: string) => fs.writeFileSync(db, randomBytes(20480))],
    ["a truncated database (SQLITE_CORRUPT)", (db: string) => {
      const bytes = fs.readFileSync(db);
      fs.writeFileSync(db, Buffer.concat([bytes.subarray(0, 100), Buffer.alloc(bytes.length - 100, 0xa5)]));
    }],
  ])("holding %s is moved aside, kept, and rebuilt from the metadata.json files with one warn line", async (_what, damage) => {
    const first = await Store.open({ home: home.dir });
    for (let i = 0; i < 40; i++) await install(first, `model-${i}`, `weights of model ${i}`);
    await first.close();
    const db = path.join(home.dir, "node.db");
    damage(db);
    const damaged = fs.readFileSync(db);

    const { logger, lines } = captureLogger();
    const store = await Store.open({ home: home.dir, logger });
    try {
      expect((await store.listModels()).map((m) => m.id).sort()).toEqual(Array.from({ length: 40 }, (_, i) => `model-${i}`).sort());
      const aside = fs.readdirSync(home.dir).filter((n) => n.startsWith("node.db.corrupt-"));
      expect(aside).toHaveLength(1);
      expect(fs.readFileSync(path.join(home.dir, aside[0]!))).toEqual(damaged);
      const warns = lines.filter((l) => l.level === 40);
      expect(warns).toHaveLength(1);
      expect(warns[0]).toMatchObject({ path: db, moved_to: path.join(home.dir, aside[0]!) });
      expect(warns[0]!.msg).toMatch(/node\.db is corrupt .*moved aside to .*node\.db\.corrupt-.* and rebuilt/);
      // The new file works: an install is indexed and listed again after a restart.
      await install(store, "after", "new weights");
    } finally {
      await store.close();
    }
    const again = await Store.open({ home: home.dir });
    expect((await again.listModels()).map((m) => m.id)).toContain("after");
    await again.close();
    expect(unhandled).toEqual([]);
  });

  it("opened without the start-up check fails its operations, never the process", async () => {
    fs.writeFileSync(path.join(home.dir, "node.db"), randomBytes(20480));
    const kv = openNodeDb<string>(home.dir, "x");
    kv.on("error", () => undefined);
    await new Promise((r) => setTimeout(r, 200));
    expect(await kv.get("k")).toBeUndefined();
    expect(unhandled).toEqual([]);
  });

  it.each([
    ["corrupt", (db: string) => fs.writeFileSync(db, randomBytes(20480))],
    // Deleted by hand and created again, with the same inode as ext4 often gives it: still another database.
    ["emptied in place", (db: string) => {
      fs.truncateSync(db, 0);
      for (const side of ["-wal", "-shm"]) fs.rmSync(`${db}${side}`, { force: true });
    }],
  ])("%s, keeps the models registered in it: they come back from registrations.json", async (_what, damage) => {
    const world = await startTinyWorld();
    try {
      const env = { ...world.env, LLMLB_LOG_LEVEL: "info" };
      const home_ = ["--home", home.dir, "--grpc-port", "1"];
      for (const id of ["org/kept", "gone"]) {
        const run = await runCli(["register", TINY_REPO, "--file", TINY_CHAT_FILE, "--id", id, ...home_], env);
        expect(run.code, run.stderr).toBe(0);
      }
      expect((await runCli(["rm", "gone", "--unregister", ...home_], env)).code).toBe(0);
      damage(path.join(home.dir, "node.db"));
      // Records edited in by hand that no registration could make are not restored.
      const copyFile = path.join(home.dir, "registrations.json");
      const copy = JSON.parse(fs.readFileSync(copyFile, "utf8")) as { registrations: Array<{ entry: Record<string, unknown> }> };
      const kept = copy.registrations[0]!;
      copy.registrations.push(
        { ...kept, entry: { ...kept.entry, id: "../evil" } },
        { ...kept, entry: { ...kept.entry, id: "escape", files: ["../../../../tmp/escape.gguf"] } },
        // A capability this node does not serve (a newer node's), or none: the listing must still work.
        { ...kept, entry: { ...kept.entry, id: "vision", capabilities: ["vision"] } },
        { ...kept, entry: { ...kept.entry, id: "nocaps", capabilities: undefined } },
      );
      fs.writeFileSync(copyFile, JSON.stringify(copy));

      const ls = await runCli(["ls", "--all", "--json", ...home_], env);
      expect(ls.code, ls.stderr).toBe(0);
      const ids = (JSON.parse(ls.stdout) as Array<{ id: string; origin: string }>).filter((m) => m.origin === "registered").map((m) => m.id).sort();
      expect(ids).toEqual(["org/kept"]);
    } finally {
      await world.close();
    }
  }, 60_000);

  it("does not stop the CLI: it works on the rebuilt database", async () => {
    fs.writeFileSync(path.join(home.dir, "node.db"), randomBytes(20480));
    const run = await cli(["ls", "--home", home.dir, "--grpc-port", "1"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(fs.readdirSync(home.dir).some((n) => n.startsWith("node.db.corrupt-"))).toBe(true);
  }, 60_000);
});

describe("a home that cannot be written", () => {
  let scratch: { dir: string; cleanup: () => void };
  beforeEach(() => {
    scratch = tempDir("llmlb-nohome-");
  });
  afterEach(() => scratch.cleanup());

  it("stops opening the store with INVALID_CONFIG naming the path and LLMLB_HOME / --home", async () => {
    const file = path.join(scratch.dir, "a-file");
    fs.writeFileSync(file, "");
    const home = path.join(file, "home");
    const err = await failure(Store.open({ home }));
    expect(err).toMatchObject({ reason: "INVALID_CONFIG", metadata: { path: home, setting: "LLMLB_HOME" } });
    expect(err.message).toContain(`the node's home ${home} cannot be used (ENOTDIR`);
    expect(err.message).toContain("point LLMLB_HOME (or --home) at a writable directory");

    // Where mkdir says ENOENT under a parent that exists (procfs), Node's recursive mkdir spins for ever.
    if (fs.existsSync("/proc/self")) {
      const proc = await failure(Store.open({ home: "/proc/llmlb-home" }));
      expect(proc.message).toContain("the node's home /proc/llmlb-home cannot be used (ENOENT");
    }

    fs.mkdirSync(path.join(scratch.dir, "node.db"));
    const db = await failure(Store.open({ home: scratch.dir }));
    expect(db).toMatchObject({ reason: "INVALID_CONFIG", metadata: { path: path.join(scratch.dir, "node.db") } });
    expect(db.message).toMatch(/the node's database .*node\.db cannot be opened for writing .*LLMLB_HOME \(or --home\)/);
  });

  it.each([
    ["serve", ["serve", "--http-port", "0", "--grpc-port", "0"]],
    ["ls", ["ls", "--grpc-port", "1"]],
  ])("makes `%s` exit 1 with one line naming node.db and LLMLB_HOME, no stack trace", async (_name, args) => {
    fs.mkdirSync(path.join(scratch.dir, "node.db"));
    const run = await cli([...args, "--home", scratch.dir]);
    expect(run.code).toBe(1);
    const lines = run.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(
      `llmlb-node: the node's database ${path.join(scratch.dir, "node.db")} cannot be opened for writing (EISDIR: it is a directory, not a file); ` +
        `it lives in the node's home ${scratch.dir}: make it writable by the user running the node, or point LLMLB_HOME (or --home) at a writable directory (INVALID_CONFIG)`,
    );
    expect(run.stdout).toBe("");
  }, 60_000);
});
