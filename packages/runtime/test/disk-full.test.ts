import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InferenceService, type ChatResponse } from "../src/gen/llmlb/node/v1/inference_pb.js";
import { grpcJsClient, startTestNode, type TestNode } from "../../../testkit/node/index.js";
import { startTinyWorld, tinyEmbed, TINY_EMBED_FILE, TINY_EMBED_ID, type TinyWorld } from "../../../testkit/world/tiny-world.js";

/**
 * A real "no space left on device" from the kernel, without root: the download's .part file is a
 * symlink to /dev/full, whose every write(2) fails with ENOSPC. The transfer engine opens and
 * writes it exactly as it would a file on a full disk (same open, same positional writes, same
 * errno), after the free-space check passed — the case of a disk that fills up mid-transfer. A
 * small tmpfs would also fill for real, but mounting one needs privileges CI is not assumed to have.
 */
const DEV_FULL = "/dev/full";

interface ModelJson {
  state: string;
  failure_reason: string | null;
  local: { path: string } | null;
}

describe.skipIf(!fs.existsSync(DEV_FULL))("a disk that fills up mid-transfer", () => {
  let world: TinyWorld;
  let node: TestNode;
  let inference: ReturnType<typeof grpcJsClient>;

  beforeAll(async () => {
    world = await startTinyWorld();
    node = await startTestNode({ ...world.env, LLMLB_DISK_RESERVE: "0" });
    inference = grpcJsClient(InferenceService, node.grpcUrl);
  });
  afterAll(async () => {
    inference?.close();
    await node?.stop();
    await world?.close();
  });

  it("ends the download with INSUFFICIENT_DISK, leaves nothing half-written, keeps serving, and a retry completes", async () => {
    const partialDir = node.runtime.store.models.partialDir(TINY_EMBED_ID);
    fs.mkdirSync(partialDir, { recursive: true });
    const part = path.join(partialDir, `${TINY_EMBED_FILE}.part`);
    fs.symlinkSync(DEV_FULL, part);

    const chatting = chatOutcome("tiny-chat", 32);
    const failed = await node.runtime.resolver.resolve({ modelId: TINY_EMBED_ID }).catch((e: unknown) => e);
    expect(failed).toMatchObject({ reason: "INSUFFICIENT_DISK" });
    expect((failed as Error).message).toMatch(/^the disk is full \(ENOSPC: no space left on device, write\): free space on it .* or lower LLMLB_DISK_RESERVE, then try again$/);

    const shown = await model(TINY_EMBED_ID);
    expect(shown.state).toBe("failed");
    expect(shown.failure_reason).toContain("the disk is full");
    expect(shown.local).toBeNull();
    // Nothing half-written stays: no partial file or record, nothing installed for the model.
    expect(fs.existsSync(part) || fs.existsSync(`${part}.json`)).toBe(false);
    expect(fs.existsSync(node.runtime.store.models.dir(TINY_EMBED_ID))).toBe(false);
    expect(await node.runtime.store.listModels()).not.toContainEqual(expect.objectContaining({ id: TINY_EMBED_ID }));

    // The node served another model meanwhile and still does.
    expect((await chatting).usage?.completionTokens).toBe(32);
    expect((await chatOutcome("tiny-chat", 4)).usage?.completionTokens).toBe(4);

    // With the space back (the engine removed its .part, so writes go to the real disk), a retry completes.
    const done = await node.runtime.resolver.resolve({ modelId: TINY_EMBED_ID });
    expect(createHash("sha256").update(fs.readFileSync(done.path)).digest("hex")).toBe(createHash("sha256").update(tinyEmbed).digest("hex"));
    expect((await model(TINY_EMBED_ID)).state).toBe("ready");
    const embedded = await inference.unary<{ embeddings: unknown[] }>("embed", { modelId: TINY_EMBED_ID, inputs: ["x"] });
    expect(embedded.embeddings).toHaveLength(1);
  }, 120_000);

  async function model(id: string): Promise<ModelJson> {
    return (await (await fetch(`${node.httpUrl}/v0/models/${id}`)).json()) as ModelJson;
  }

  function chatOutcome(modelId: string, maxTokens: number): Promise<ChatResponse> {
    const call = inference.stream<ChatResponse>("chat", { modelId, messages: [{ role: "user", content: "Go on" }], temperature: 0, maxTokens });
    let last: ChatResponse | undefined;
    return new Promise((resolve, reject) => {
      call.on("data", (message: ChatResponse) => (last = message));
      call.on("error", (error: grpc.ServiceError) => reject(error));
      call.on("end", () => (last ? resolve(last) : reject(new Error("no answer"))));
    });
  }
});
