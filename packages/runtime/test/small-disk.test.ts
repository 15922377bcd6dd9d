import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CLI_ARGS, fillDisk, smallDisk, smallDisksWork, spawnChildNode, tempDir, type ChildNode } from "../../../testkit/node/index.js";
import { startTinyWorld, TINY_CHAT_FILE, TINY_CHAT_ID, TINY_EMBED_ID, TINY_REPO, type TinyWorld } from "../../../testkit/world/tiny-world.js";

/**
 * A node whose home is a small disk of its own (a tmpfs in namespaces of the node's process, see
 * testkit/node/small-disk.ts): the kernel's own ENOSPC when it is full and EROFS once it is
 * remounted read-only, as an operator's disk gives them.
 */
const DISK_MIB = 48;

interface ErrorJson {
  error: { message: string; type: string; code: string };
}

describe.skipIf(!smallDisksWork())("a node on a small disk", () => {
  let world: TinyWorld;
  let node: ChildNode | undefined;

  beforeAll(async () => {
    world = await startTinyWorld();
  });
  afterEach(async () => {
    await node?.stop();
    node = undefined;
  });
  afterAll(async () => {
    await world?.close();
  });

  const start = async () => {
    const started = await spawnChildNode({ ...world.env, LLMLB_DISK_RESERVE: "0" }, 30_000, (argv, home) => smallDisk(home, DISK_MIB).launcher(argv));
    node = started;
    return { node: started, run: (command: string) => smallDisk(started.home, DISK_MIB).inNamespace(started.process.pid!, command) };
  };
  const post = async (n: ChildNode, route: string, body: unknown) => {
    const res = await fetch(`${n.httpUrl}${route}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as ErrorJson };
  };
  const chat = (n: ChildNode) => post(n, "/v1/chat/completions", { model: TINY_CHAT_ID, messages: [{ role: "user", content: "hi" }], max_tokens: 4 });

  it("full: a model or a registration is refused with INSUFFICIENT_DISK (507) saying what to do, never 'all sources failed'; with room again it is served", async () => {
    const { node: n, run } = await start();
    run(fillDisk(n.home));

    const refused = await chat(n);
    expect(refused.status, JSON.stringify(refused.json)).toBe(507);
    expect(refused.json.error.code).toBe("insufficient_disk");
    expect(refused.json.error.message).toMatch(/^the disk is full \(ENOSPC: .*\): free space on it \(llmlb-node ls lists the models, llmlb-node rm <id> deletes one\) or lower LLMLB_DISK_RESERVE, then try again$/);
    // The node's log says why, whoever asked (here a chat, not a pull).
    expect(n.logs.filter((line) => line.level === "warn").map((line) => String(line.msg))).toContainEqual(expect.stringMatching(`^model ${TINY_CHAT_ID} could not be fetched: the disk is full`));

    const registered = await post(n, "/v0/models/register", { repo: TINY_REPO, filename: TINY_CHAT_FILE, id: "another-chat" });
    expect(registered.status, JSON.stringify(registered.json)).toBe(507);
    expect(registered.json.error.message).toMatch(/^the disk is full \(SQLITE_FULL/);

    run(`rm '${n.home}/filler' '${n.home}/filler-tail'`);
    expect((await chat(n)).status).toBe(200);
  }, 120_000);

  it("read-only: downloads and deletions are NOT_WRITABLE naming the path and what to do; the node keeps serving what it has", async () => {
    const { node: n, run } = await start();
    expect((await chat(n)).status).toBe(200);
    expect((await post(n, `/v0/models/${TINY_CHAT_ID}/unload`, {})).status).toBe(200);
    // The models directory read-only (node.db stays writable, as on a read-only models volume).
    const models = path.join(n.home, "models");
    run(`mount --bind '${models}' '${models}' && mount -o remount,ro,bind '${models}'`);

    const deleted = await fetch(`${n.httpUrl}/v0/models/${TINY_CHAT_ID}`, { method: "DELETE" });
    const deletedJson = (await deleted.json()) as ErrorJson;
    expect(deleted.status, JSON.stringify(deletedJson)).toBe(500);
    expect(deletedJson.error.code).toBe("not_writable");
    expect(deletedJson.error.message).toMatch(new RegExp(`^${models}.* cannot be written \\(EROFS: read-only file system.*\\): make the node's home \\(LLMLB_HOME\\) and everything in it writable`));
    expect((await chat(n)).status).toBe(200);

    const download = await post(n, "/v1/embeddings", { model: TINY_EMBED_ID, input: "hi" });
    expect(download.status, JSON.stringify(download.json)).toBe(500);
    expect(download.json.error.code).toBe("not_writable");
  }, 120_000);

  it("a verified download the full disk kept from being installed stays, and installs once there is room", () => {
    const { dir, cleanup } = tempDir("llmlb-small-install-");
    try {
      // The store itself, on a disk of its own: node --conditions=source --import tsx <script> <home>.
      const script = path.join(import.meta.dirname, "fixtures/install-on-full-disk.ts");
      const [command, ...args] = smallDisk(dir, 8).launcher([process.execPath, ...CLI_ARGS.slice(0, 3), script, dir]);
      const out = execFileSync(command!, args, { encoding: "utf8" });
      const [full, roomy] = out.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(full).toEqual({ installed: false, errno: "ENOSPC", partialKept: true });
      expect(roomy).toEqual({ installed: true, listed: true });
    } finally {
      cleanup();
    }
  }, 60_000);
});

/** Root can read any file; an unprivileged node cannot read a file of mode 000. */
const NOBODY = 65534;
const canDropToNobody = () => process.getuid?.() === 0 && fs.existsSync("/usr/bin/setpriv");

describe.skipIf(!canDropToNobody())("a node run by an unprivileged user", () => {
  let world: TinyWorld;
  let node: ChildNode | undefined;
  let extra: { dir: string; cleanup: () => void };
  let readable: { dir: string; cleanup: () => void };

  beforeAll(async () => {
    world = await startTinyWorld();
    extra = tempDir("llmlb-unreadable-");
    readable = tempDir("llmlb-readable-");
    for (const { dir } of [extra, readable]) fs.chmodSync(dir, 0o755);
  });
  afterAll(async () => {
    await node?.stop();
    await world?.close();
    extra?.cleanup();
    readable?.cleanup();
  });

  it("a file it may not read in an extra model directory is that source's failure: the next source serves the model", async () => {
    const unreadable = path.join(extra.dir, TINY_CHAT_FILE);
    fs.writeFileSync(unreadable, "not readable by the node");
    fs.chmodSync(unreadable, 0o000);
    const asNobody = (argv: string[], home: string) => {
      fs.chownSync(home, NOBODY, NOBODY);
      return ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", ...argv];
    };
    // The world's catalog file sits in a directory only root may enter.
    const supported = path.join(readable.dir, "supported_models.json");
    fs.copyFileSync(world.env.LLMLB_SUPPORTED_MODELS!, supported);
    fs.chmodSync(supported, 0o644);
    node = await spawnChildNode({ ...world.env, LLMLB_SUPPORTED_MODELS: supported, LLMLB_DISK_RESERVE: "0", LLMLB_EXTRA_MODEL_DIRS: extra.dir }, 30_000, asNobody);
    const res = await fetch(`${node.httpUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: TINY_CHAT_ID, messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
    });
    // Before, EACCES anywhere was taken for the node's own disk: 500 not_writable, the hub never tried.
    expect(res.status, await res.clone().text()).toBe(200);
  }, 120_000);
});
