import OpenAI from "openai";
import { THINKING_TEMPLATE, tinyModelBytes } from "../../../../testkit/gguf/tiny-gguf.js";
import { startTestNode, type TestNode } from "../../../../testkit/node/index.js";
import { startTinyWorld, tinyEntry, type TinyWorld } from "../../../../testkit/world/tiny-world.js";

/** A tiny model whose chat template thinks (Qwen3-style `<think>`), next to the tiny chat model. */
export const THINK_ID = "tiny-think";
const THINK_FILE = "tiny-think-F32.gguf";
const THINK_REPO = "llmlb-test/think-GGUF";

/** A node serving the tiny chat and thinking models, and the official openai SDK pointed at its /v1. */
export async function startAgentWorld(): Promise<{ world: TinyWorld; node: TestNode; openai: OpenAI; close(): Promise<void> }> {
  const tinyThink = tinyModelBytes({ chatTemplate: THINKING_TEMPLATE });
  const world = await startTinyWorld({ extraModels: [tinyEntry(THINK_ID, THINK_FILE, tinyThink, ["text-generation"], { repo: THINK_REPO })] });
  await world.hf.addRepo(THINK_REPO, { files: { [THINK_FILE]: tinyThink } });
  const node = await startTestNode(world.env);
  const openai = new OpenAI({ apiKey: "unused", baseURL: `${node.httpUrl}/v1`, maxRetries: 0 });
  return {
    world,
    node,
    openai,
    async close() {
      await node.stop();
      await world.close();
    },
  };
}
