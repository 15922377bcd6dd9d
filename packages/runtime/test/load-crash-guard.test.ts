import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isLlmlbError } from "../src/index.js";
import { LoadCrashGuard } from "../src/engine/runner/load-crash-guard.js";

const BACKOFF_MS = 60_000;
let dir: string;
let file: string;
let now: number;
let guard: LoadCrashGuard;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "llmlb-guard-"));
  file = path.join(dir, "model.gguf");
  fs.writeFileSync(file, "first bytes");
  now = 1_000_000;
  guard = new LoadCrashGuard(BACKOFF_MS, () => now);
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const refusal = (modelId = "m", at?: string) => guard.check(modelId, at).then(() => undefined, (err: unknown) => err);
/** Lets the guard look at the file it recorded (it does so in the background). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe("LoadCrashGuard", () => {
  it("refuses a model during the backoff after its first crash, then lets one more load through", async () => {
    expect(guard.record("m", file, "signal SIGABRT: GGML_ASSERT(n_layer <= 512)")).toBe(1);
    const during = await refusal();
    expect(isLlmlbError(during, "ENGINE_CRASHED") && during.metadata).toEqual({ model_id: "m", retry_after_seconds: "60" });
    expect(String((during as Error).message)).toContain("GGML_ASSERT");
    now += BACKOFF_MS;
    expect(await refusal()).toBeUndefined();
    expect(await refusal("other")).toBeUndefined();
  });

  it("keeps a model refused after a second crash of the same file, however long it waits", async () => {
    guard.record("m", file, "signal SIGABRT");
    await settle();
    now += BACKOFF_MS;
    expect(guard.record("m", file, "signal SIGABRT")).toBe(2);
    now += 100 * BACKOFF_MS;
    const kept = await refusal();
    expect(isLlmlbError(kept, "INVALID_MODEL_FILE") && kept.metadata).toEqual({ model_id: "m", cause: "ENGINE_CRASHED" });
  });

  it("forgets the crashes when the file changes, the model comes from another file, or an operator retries", async () => {
    guard.record("m", file, "signal SIGABRT");
    guard.record("m", file, "signal SIGABRT");
    await settle();
    expect(await refusal()).toBeDefined();
    expect(await refusal("m", path.join(dir, "elsewhere.gguf"))).toBeUndefined();
    expect(await refusal()).toBeUndefined();

    guard.record("m", file, "signal SIGABRT");
    guard.record("m", file, "signal SIGABRT");
    await settle();
    fs.writeFileSync(file, "new bytes, another size");
    expect(await refusal()).toBeUndefined();

    guard.record("m", file, "signal SIGABRT");
    guard.forget("m");
    expect(await refusal()).toBeUndefined();
  });
});
