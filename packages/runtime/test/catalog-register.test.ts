import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { errorInfoOf } from "../src/errors/index.js";
import { ModelOrigin, ModelState } from "../src/gen/llmlb/node/v1/model_pb.js";
import {
  CHAT_REPO,
  EMBED_REPO,
  GATED_REPO,
  NO_GGUF_REPO,
  SHARDED_REPO,
  shardA,
  shardB,
  startCatalogNode,
  tinyInfo,
  tinySupported,
  useCatalogWorld,
} from "./catalog-world.js";
import { TINY_CHAT_FILE, TINY_LORA_FILE, TINY_REPO, TINY_REPO_FILES, tinyChat, tinyLora } from "../../../testkit/world/tiny-world.js";

/** The code and reason a call failed with. */
async function failure(call: Promise<unknown>): Promise<{ code: Code; reason: string; message: string }> {
  try {
    await call;
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return errorInfoOf(err);
  }
  throw new Error("expected the call to fail");
}

const register = (fields: { repo: string; filename?: string; id?: string; displayName?: string; chatTemplate?: string; tags?: string[]; contextLength?: number }) => fields;

describe("RegisterModel against the Hugging Face stand-in", () => {
  const world = useCatalogWorld([tinySupported()]);
  beforeAll(() => world.hf.addRepo(TINY_REPO, { files: TINY_REPO_FILES }));
  afterEach(async () => {
    await world.hf.up();
    world.hf.clearFaults();
  });

  it("registers from a repo id, picking Q4_K_M by default and saying so", async () => {
    const res = await world.node.catalog.registerModel(register({ repo: CHAT_REPO, id: "by-repo-id", tags: ["Test"] }));
    expect(res.model).toMatchObject({
      id: "by-repo-id",
      repo: CHAT_REPO,
      filename: "tiny-chat-Q4_K_M.gguf",
      files: ["tiny-chat-Q4_K_M.gguf"],
      sizeBytes: BigInt(tinyInfo.size),
      sha256: tinyInfo.sha256,
      quantization: "Q4_K_M",
      origin: ModelOrigin.REGISTERED,
      state: ModelState.AVAILABLE,
      tags: ["test"],
      format: "gguf",
    });
    expect(res.warnings.join("\n")).toMatch(/no filename given: chose Q4_K_M \(tiny-chat-Q4_K_M\.gguf\) of the 3 GGUF models/);
    expect(res.availableFiles).toEqual(["tiny-chat-F16.gguf", "tiny-chat-Q4_K_M.gguf", "tiny-chat-Q8_0.gguf"]);
    // Metadata only: no file was fetched, only the model API was asked.
    expect(world.hf.requests.filter((r) => r.path.includes("/resolve/") || r.host === "cdn")).toEqual([]);
  });

  it("keeps a registration's context_length and refuses one out of range", async () => {
    const res = await world.node.catalog.registerModel(register({ repo: CHAT_REPO, id: "long-context", contextLength: 16_384 }));
    expect(res.model?.contextLength).toBe(16_384);
    expect((await world.node.catalog.getModel({ modelId: "long-context" })).model?.contextLength).toBe(16_384);
    const tooSmall = await failure(world.node.catalog.registerModel(register({ repo: CHAT_REPO, id: "tiny-context", contextLength: 12 })));
    expect(tooSmall).toMatchObject({ reason: "INVALID_ARGUMENT", metadata: { field: "context_length" } });
    expect(tooSmall.message).toContain("give 256 to 16777216 tokens");
  });

  it("registers from https://huggingface.co/org/repo, …/blob/… and …/resolve/… URLs", async () => {
    const page = await world.node.catalog.registerModel(register({ repo: `https://huggingface.co/${CHAT_REPO}`, filename: "tiny-chat-F16.gguf" }));
    expect(page.model).toMatchObject({ id: "tiny-chat-f16", quantization: "F16" });
    expect(page.warnings).toEqual([]);

    const blob = await world.node.catalog.registerModel(register({ repo: `https://huggingface.co/${CHAT_REPO}/blob/main/tiny-chat-Q8_0.gguf`, displayName: "Tiny Q8" }));
    expect(blob.model).toMatchObject({ id: "tiny-chat-q8_0", displayName: "Tiny Q8", filename: "tiny-chat-Q8_0.gguf", revision: "main" });

    // The configured endpoint's own host is accepted too (mirrors, the stand-in).
    const resolve = await world.node.catalog.registerModel(register({ repo: `${world.hf.url}/${CHAT_REPO}/resolve/main/tiny-chat-Q8_0.gguf?download=true`, id: "via-resolve" }));
    expect(resolve.model).toMatchObject({ id: "via-resolve", filename: "tiny-chat-Q8_0.gguf", sha256: world.hf.fileInfo(CHAT_REPO, "tiny-chat-Q8_0.gguf")!.sha256 });
  });

  it("registers every part of a sharded GGUF, from any part's name", async () => {
    const res = await world.node.catalog.registerModel(register({ repo: SHARDED_REPO, filename: "tiny-Q4_K_M-00002-of-00002.gguf" }));
    expect(res.model).toMatchObject({
      id: "tiny-q4_k_m",
      filename: "tiny-Q4_K_M-00001-of-00002.gguf",
      files: ["tiny-Q4_K_M-00001-of-00002.gguf", "tiny-Q4_K_M-00002-of-00002.gguf"],
      sizeBytes: BigInt(shardA.byteLength + shardB.byteLength),
    });
  });

  it("takes a registration's capabilities, else a reranker's from its text-ranking pipeline tag, and refuses an unspecified one", async () => {
    await world.hf.addRepo("llmlb-test/tiny-ranker-GGUF", { files: { "ranker-Q8_0.gguf": tinyChat }, pipeline_tag: "text-ranking" });
    await world.hf.addRepo("llmlb-test/untagged-embed-GGUF", { files: { "embed-Q8_0.gguf": tinyChat }, pipeline_tag: "" });
    const ranker = await world.node.catalog.registerModel(register({ repo: "llmlb-test/tiny-ranker-GGUF" }));
    expect(ranker.model?.capabilities).toEqual([15]); // CAPABILITY_RERANK
    const untagged = await world.node.catalog.registerModel(register({ repo: "llmlb-test/untagged-embed-GGUF", id: "untagged-default" }));
    expect(untagged.model?.capabilities).toEqual([1]); // CAPABILITY_TEXT_GENERATION
    const told = await world.node.catalog.registerModel({ ...register({ repo: "llmlb-test/untagged-embed-GGUF", id: "untagged-embed" }), capabilities: [2, 2] });
    expect(told.model?.capabilities).toEqual([2]); // CAPABILITY_EMBEDDINGS, once
    expect((await world.node.catalog.getModel({ modelId: "untagged-embed" })).model?.capabilities).toEqual([2]);
    expect(await failure(world.node.catalog.registerModel({ ...register({ repo: "llmlb-test/untagged-embed-GGUF", id: "untagged-none" }), capabilities: [0] }))).toMatchObject({
      code: Code.InvalidArgument,
      message: "capabilities[0] is not a capability this node serves; give text-generation, embeddings or rerank",
    });
  });

  it("marks embedding repos and warns about gated ones", async () => {
    const embed = await world.node.catalog.registerModel(register({ repo: EMBED_REPO }));
    expect(embed.model?.capabilities).toEqual([2]); // CAPABILITY_EMBEDDINGS
    const gated = await world.node.catalog.registerModel(register({ repo: GATED_REPO }));
    expect(gated.model?.id).toBe("tiny-gated-q4_k_m");
    expect(gated.warnings.join("\n")).toMatch(/is gated: request access on .*, then set HF_TOKEN/);
  });

  it("maps a missing repo, a missing file, a repo without GGUF and a bad URL to clear errors", async () => {
    expect(await failure(world.node.catalog.registerModel(register({ repo: "nobody/nothing-GGUF" })))).toMatchObject({
      code: Code.InvalidArgument,
      reason: "INVALID_REPO",
      message: expect.stringMatching(/repository nobody\/nothing-GGUF was not found on http:\/\/127\.0\.0\.1:\d+ \(if it is private, set HF_TOKEN/),
    });
    expect(await failure(world.node.catalog.registerModel(register({ repo: CHAT_REPO, filename: "nope-Q2_K.gguf" })))).toMatchObject({
      code: Code.NotFound,
      reason: "FILE_NOT_FOUND",
      message: expect.stringContaining("tiny-chat-Q4_K_M.gguf"),
    });
    expect(await failure(world.node.catalog.registerModel(register({ repo: NO_GGUF_REPO })))).toMatchObject({ code: Code.FailedPrecondition, reason: "NO_GGUF_FILES" });
    expect(await failure(world.node.catalog.registerModel(register({ repo: "https://example.com/a/b" })))).toMatchObject({ code: Code.InvalidArgument, reason: "INVALID_REPO" });
    expect(await failure(world.node.catalog.registerModel(register({ repo: CHAT_REPO, id: "Bad/../id" })))).toMatchObject({ reason: "INVALID_MODEL_ID" });
    expect(await failure(world.node.catalog.registerModel(register({ repo: CHAT_REPO, filename: "tiny-chat-Q4_K_M.bin" })))).toMatchObject({
      reason: "INVALID_ARGUMENT",
      message: 'filename "tiny-chat-Q4_K_M.bin" is not a GGUF file (its name must end in .gguf)',
      metadata: { field: "filename" },
    });
    for (const filename of ["../tiny-chat-Q4_K_M.gguf", "sub/./tiny-chat-Q4_K_M.gguf", "sub//tiny-chat-Q4_K_M.gguf", "sub\\tiny-chat-Q4_K_M.gguf"]) {
      expect(await failure(world.node.catalog.registerModel(register({ repo: CHAT_REPO, filename }))), filename).toMatchObject({
        reason: "INVALID_ARGUMENT",
        message: expect.stringMatching(/has a '\.' or '\.\.' segment, an empty one, a backslash or a NUL; give the file's path inside the repository/),
        metadata: { field: "filename" },
      });
    }
  });

  it("refuses an id the catalog already has with ALREADY_EXISTS, saying to choose another id or to pass one", async () => {
    const first = await world.node.catalog.registerModel(register({ repo: CHAT_REPO, id: "taken" }));
    // The same registration again (a client retrying after its connection dropped) is answered as the first.
    expect((await world.node.catalog.registerModel(register({ repo: CHAT_REPO, id: "taken" }))).model).toEqual(first.model);
    for (const [id, displayName] of [["taken", "Another name"], ["tiny-chat-q4_k_m", ""]] as const) {
      const given = await failure(world.node.catalog.registerModel(register({ repo: CHAT_REPO, id, displayName })));
      expect(given).toMatchObject({ code: Code.AlreadyExists, reason: "MODEL_ALREADY_EXISTS", message: expect.stringContaining(`model ${id} already exists`) });
      // The id was passed: telling the caller to pass one would not help.
      expect(given.message).not.toContain("pass id");
      expect(given.message).toContain("choose another id");
    }
    // Derived from the file name (tiny-chat-Q4_K_M.gguf is the supported model's file).
    const derived = await failure(world.node.catalog.registerModel(register({ repo: CHAT_REPO })));
    expect(derived).toMatchObject({ code: Code.AlreadyExists, reason: "MODEL_ALREADY_EXISTS" });
    expect(derived.message).toMatch(/tiny-chat-q4_k_m .*derived from tiny-chat-Q4_K_M\.gguf.*pass id/);
  });

  it("never picks a LoRA adapter when no filename is given, and says so when a repo holds only adapters", async () => {
    const res = await world.node.catalog.registerModel(register({ repo: TINY_REPO, id: "tiny-repo-default" }));
    expect(res.model).toMatchObject({ filename: TINY_CHAT_FILE, files: [TINY_CHAT_FILE] });
    // The chat and the embedding model: the adapter is not counted among the models.
    expect(res.warnings.join("\n")).toContain(`no filename given: chose F32 (${TINY_CHAT_FILE}) of the 2 GGUF models in ${TINY_REPO}`);

    // Projectors, importance matrices and adapters are not models: one model is "the only" one.
    const oneModel = "llmlb-test/one-model-GGUF";
    await world.hf.addRepo(oneModel, { files: { "m-Q4_K_M.gguf": tinyChat, "mmproj-m-f16.gguf": tinyLora, "m.imatrix.gguf": tinyLora, "m-lora-f16.gguf": tinyLora } });
    const only = await world.node.catalog.registerModel(register({ repo: oneModel, id: "one-model" }));
    expect(only.warnings.join("\n")).toContain(`no filename given: chose Q4_K_M (m-Q4_K_M.gguf), the only GGUF model in ${oneModel}`);
    const adaptersOnly = "llmlb-test/tiny-adapters-GGUF";
    await world.hf.addRepo(adaptersOnly, { files: { "tiny-F16-LoRA.gguf": tinyLora, "lora_style.gguf": tinyLora } });
    const refused = await failure(world.node.catalog.registerModel(register({ repo: adaptersOnly })));
    expect(refused).toMatchObject({ code: Code.FailedPrecondition, reason: "NO_GGUF_FILES" });
    expect(refused.message).toContain(`${adaptersOnly} holds LoRA adapters (lora_style.gguf, tiny-F16-LoRA.gguf), not a model to register`);
    expect(refused.message).toContain(`llmlb-node pull --adapter hf:${adaptersOnly}/lora_style.gguf`);
  });

  it("refuses a LoRA adapter registered by name as a model when it is fetched, saying it is an adapter and how to use one", async () => {
    const registered = await world.node.catalog.registerModel(register({ repo: TINY_REPO, filename: TINY_LORA_FILE, id: "lora-as-model" }));
    expect(registered.warnings.join("\n")).toContain(`tiny-lora.gguf's name says it is a LoRA adapter: if it is one, it will be refused when fetched; pull it with llmlb-node pull --adapter hf:${TINY_REPO}/tiny-lora.gguf`);
    const resolving = (async () => {
      for await (const event of world.node.clients.resolver.resolve({ target: { case: "modelId", value: "lora-as-model" } })) void event;
    })();
    const refused = await failure(resolving);
    expect(refused).toMatchObject({ code: Code.FailedPrecondition, reason: "INVALID_MODEL_FILE", metadata: { field: "general.type", value: "adapter" } });
    expect(refused.message).toMatch(/^tiny-lora\.gguf is a LoRA adapter \(general\.type = "adapter"\), not a model/);
    expect(refused.message).toContain("llmlb-node pull --adapter hf:<org>/<repo>/tiny-lora.gguf");
    expect(refused.message).not.toMatch(/download it again|\.partial/);
  });

  it("registers with warnings when the Hub does not answer, but asks for a filename when it needs the listing", async () => {
    await world.hf.down({ mode: "refused" });
    const res = await world.node.catalog.registerModel(register({ repo: `https://huggingface.co/${CHAT_REPO}/resolve/main/tiny-chat-Q8_0.gguf`, id: "offline" }));
    expect(res.model).toMatchObject({ id: "offline", filename: "tiny-chat-Q8_0.gguf", sizeBytes: 0n, sha256: "" });
    expect(res.warnings.join("\n")).toMatch(/did not answer \(ECONNREFUSED\): size and sha256 of tiny-chat-Q8_0\.gguf are unknown/);
    expect(res.availableFiles).toEqual([]);
    expect(await failure(world.node.catalog.registerModel(register({ repo: CHAT_REPO, id: "no-file" })))).toMatchObject({
      code: Code.FailedPrecondition,
      reason: "NO_GGUF_FILES",
      message: expect.stringContaining("give a filename to register it anyway"),
    });
  });

  it("answers GetModel for registered and supported ids, NOT_FOUND MODEL_NOT_SUPPORTED otherwise", async () => {
    expect((await world.node.catalog.getModel({ modelId: "tiny-chat-q4_k_m" })).model?.origin).toBe(ModelOrigin.SUPPORTED);
    expect((await world.node.catalog.getModel({ modelId: "by-repo-id" })).model?.origin).toBe(ModelOrigin.REGISTERED);
    expect(await failure(world.node.catalog.getModel({ modelId: "unknown-model" }))).toMatchObject({ code: Code.NotFound, reason: "MODEL_NOT_SUPPORTED" });
    expect(await failure(world.node.catalog.getModel({ modelId: "../etc" }))).toMatchObject({ code: Code.InvalidArgument, reason: "INVALID_MODEL_ID" });
  });

  it("keeps registrations across a restart on the same home", async () => {
    const before = (await world.node.catalog.listModels({ pageSize: 1000 })).models.map((m) => m.id);
    expect(before[0]).toBe("tiny-chat-q4_k_m"); // supported first
    await world.restart();
    const after = await world.node.catalog.listModels({ pageSize: 1000 });
    expect(after.models.map((m) => m.id)).toEqual(before);
    expect(after.models.find((m) => m.id === "tiny-q4_k_m")?.files).toHaveLength(2);
  });

  it("DeleteModel with remove_registration forgets a registered model but keeps a supported one, saying so", async () => {
    const gone = await world.node.catalog.deleteModel({ modelId: "taken", removeRegistration: true });
    expect(gone.model).toBeUndefined();
    expect(await failure(world.node.catalog.getModel({ modelId: "taken" }))).toMatchObject({ reason: "MODEL_NOT_SUPPORTED" });

    let notice = "";
    const kept = await world.node.catalog.deleteModel(
      { modelId: "tiny-chat-q4_k_m", removeRegistration: true },
      { onHeader: (headers) => (notice = headers.get("llmlb-notice") ?? "") },
    );
    expect(kept.model).toMatchObject({ id: "tiny-chat-q4_k_m", state: ModelState.AVAILABLE, origin: ModelOrigin.SUPPORTED });
    expect(notice).toMatch(/is a supported model .* cannot be unregistered/);
    // Without remove_registration a registered model stays.
    expect((await world.node.catalog.deleteModel({ modelId: "by-repo-id" })).model?.id).toBe("by-repo-id");
  });

  it("lists adapters and deletes them through the store", async () => {
    expect((await world.node.catalog.listAdapters({})).adapters).toEqual([]);
    expect(await failure(world.node.catalog.deleteAdapter({ adapterId: "github--o--r--v1--a.gguf" }))).toMatchObject({
      code: Code.NotFound,
      reason: "ADAPTER_NOT_FOUND",
    });
  });
});

describe("two nodes on one home", () => {
  const world = useCatalogWorld([tinySupported()]);

  it("share registrations: one node's shows up on the other, which then refuses the same id", async () => {
    const second = await startCatalogNode({ HF_ENDPOINT: world.hf.url, LLMLB_SUPPORTED_MODELS: world.supportedFile, LLMLB_HOME: world.home });
    try {
      await world.node.catalog.registerModel(register({ repo: CHAT_REPO, id: "shared-home" }));
      await expect.poll(async () => (await second.catalog.getModel({ modelId: "shared-home" }).catch(() => undefined))?.model?.id, { timeout: 10_000, interval: 200 }).toBe("shared-home");
      const again = await second.catalog.registerModel(register({ repo: CHAT_REPO, id: "shared-home", filename: "tiny-chat-Q8_0.gguf" })).catch((e: unknown) => errorInfoOf(e));
      expect(again).toMatchObject({ reason: "MODEL_ALREADY_EXISTS" });
    } finally {
      await second.stop();
    }
  });
});
