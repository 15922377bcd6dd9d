import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isolatedEnv, runCli as cli, tempDir } from "../../../testkit/node/index.js";



describe("a bad flag value", () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);
  // No node answers, no hub: had the command run, it would have created the home (and tried a download).
  const home = path.join(dir, "home");
  const env = isolatedEnv(home, { LLMLB_GRPC_PORT: "9" });

  const cases: Array<[string[], string]> = [
    [["chat", "tiny-chat", "--max-tokens", "abc"], "option '--max-tokens <n>' argument 'abc' is invalid. expected a whole number from 1 to 1000000"],
    [["chat", "tiny-chat", "--max-tokens", "12abc"], "option '--max-tokens <n>' argument '12abc' is invalid. expected a whole number from 1 to 1000000"],
    [["chat", "tiny-chat", "--temperature", "hot"], "option '--temperature <t>' argument 'hot' is invalid. expected a number from 0 to 2"],
    [["chat", "tiny-chat", "--seed", "-1"], "option '--seed <n>' argument '-1' is invalid. expected a whole number from 0 to 4294967295"],
    [["register", "org/repo-GGUF", "--context-length", "lots"], "option '--context-length <tokens>' argument 'lots' is invalid. expected a number of tokens from 256 to 16777216 (0: the node's LLMLB_CONTEXT_SIZE)"],
    [["register", "--capability", "vision", "org/repo-GGUF"], "option '--capability <name>' argument 'vision' is invalid. expected one of text-generation, embeddings, rerank"],
    // Setting flags are checked by the setting's own parser; load --keep-alive is one.
    [["load", "tiny-chat", "--keep-alive", "5x"], 'option \'--keep-alive <value>\' argument \'5x\' is invalid. expected a duration such as "5m", "30s", "1h" or seconds (0 = at once, -1 = forever)'],
    [["pull", "tiny-chat", "--grpc-port", "http"], "option '--grpc-port <value>' argument 'http' is invalid. expected a whole number from 0 to 65535"],
    [["serve", "--memory-budget", "lots"], 'option \'--memory-budget <value>\' argument \'lots\' is invalid. expected a size in bytes, e.g. 1073741824, "512MiB" or "8GB"'],
  ];

  it("is a usage error (exit 2) naming the flag and what it expects, before the command runs", async () => {
    for (const [args, message] of cases) {
      const run = await cli(args, env);
      expect({ args, code: run.code, stderr: run.stderr, stdout: run.stdout }).toEqual({ args, code: 2, stderr: `error: ${message}\n`, stdout: "" });
    }
    expect(fs.existsSync(home)).toBe(false);
  });
});
