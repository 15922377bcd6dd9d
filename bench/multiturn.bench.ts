/**
 * Prompt-cache reuse in a growing chat: time to first token of turn 5 (~2,000 prompt tokens: a long
 * document in turn 1, short follow-ups after it) when the node reuses the sequence that holds turns
 * 1-4, against the same request on a cold sequence (the model unloaded and loaded again, so the load
 * itself is not timed). Tiny llama with a 4,096-token context, CPU, 1 thread, greedy, over
 * /v1/chat/completions with SSE; medians of 5 rounds.
 *
 *   multiturn_ttft_ratio   TTFT with reuse / TTFT cold; target ≤ 0.25
 *
 *   node --conditions=source --import tsx bench/multiturn.bench.ts
 */
import { tinyModelBytes } from "../testkit/gguf/tiny-gguf.js";
import { resolveModel, startTestNode } from "../testkit/node/index.js";
import { startTinyWorld, tinyEntry } from "../testkit/world/tiny-world.js";
import { median, printFigures } from "./bench-kit.js";

const MODEL = "tiny-4k";
const REPO = "llmlb-test/tiny-4k-GGUF";
const FILE = "tiny-4k-F32.gguf";
const ROUNDS = 5;
const ANSWER_TOKENS = 16;
const WORDS = ["the", "water", "people", "number", "sound", "world", "capital", "answer", "question", "time", "day", "word"];

const bytes = tinyModelBytes({ contextLength: 4096 });
const world = await startTinyWorld({ extraModels: [tinyEntry(MODEL, FILE, bytes, ["text-generation"], { repo: REPO, context_length: 4096 })] });
await world.hf.addRepo(REPO, { files: { [FILE]: bytes } });
const node = await startTestNode({ ...world.env, LLMLB_PARALLELISM: "1", LLMLB_KEEP_ALIVE: "-1" });
await resolveModel(node, MODEL); // on disk before anything is timed

type Message = { role: string; content: string };
const text = (words: number, seed: number) => Array.from({ length: words }, (_, i) => WORDS[(i * 7 + seed) % WORDS.length]).join(" ");

/** One streamed turn: the answer, time to first token, and the usage the node reported. */
async function turn(messages: Message[]): Promise<{ answer: string; ttftMs: number; promptTokens: number; cachedTokens: number }> {
  const started = performance.now();
  const res = await fetch(`${node.httpUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, messages, temperature: 0, max_tokens: ANSWER_TOKENS, stream: true, stream_options: { include_usage: true } }),
  });
  if (!res.ok || !res.body) throw new Error(`chat failed: ${res.status} ${await res.text()}`);
  let ttftMs = 0;
  let answer = "";
  let usage = { prompt_tokens: 0, prompt_tokens_details: { cached_tokens: 0 } };
  let buffered = "";
  const decoder = new TextDecoder();
  for await (const chunk of res.body) {
    buffered += decoder.decode(chunk as Uint8Array, { stream: true });
    let end: number;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const data = buffered.slice(0, end).replace(/^data: /, "");
      buffered = buffered.slice(end + 2);
      if (data === "[DONE]") continue;
      const event = JSON.parse(data) as { choices: Array<{ delta: { content?: string } }>; usage?: typeof usage | null };
      const content = event.choices[0]?.delta.content;
      if (content) {
        if (ttftMs === 0) ttftMs = performance.now() - started;
        answer += content;
      }
      if (event.usage) usage = event.usage;
    }
  }
  return { answer, ttftMs, promptTokens: usage.prompt_tokens, cachedTokens: usage.prompt_tokens_details.cached_tokens };
}

const reload = async () => {
  await node.clients.inference.unloadModel({ modelId: MODEL });
  await node.clients.inference.loadModel({ modelId: MODEL });
};

const warm: number[] = [];
const cold: number[] = [];
let promptTokens = 0;
let cachedTokens = 0;
for (let round = 0; round < ROUNDS; round++) {
  await reload();
  const messages: Message[] = [{ role: "user", content: `Read this document and answer questions about it. ${text(1_550, round)}` }];
  for (let k = 1; k < 5; k++) {
    const { answer } = await turn(messages);
    messages.push({ role: "assistant", content: answer }, { role: "user", content: `Question ${k}: ${text(90, round + k)}?` });
  }
  const reused = await turn(messages);
  await reload();
  const fresh = await turn(messages);
  if (fresh.answer !== reused.answer) throw new Error(`round ${round}: the reused prefix answered differently from a cold run`);
  warm.push(reused.ttftMs);
  cold.push(fresh.ttftMs);
  promptTokens = reused.promptTokens;
  cachedTokens = reused.cachedTokens;
}

printFigures({
  turn5_prompt_tokens: promptTokens,
  turn5_cached_tokens: cachedTokens,
  ttft_reuse_ms: median(warm).toFixed(1),
  ttft_cold_ms: median(cold).toFixed(1),
  multiturn_ttft_ratio: (median(warm) / median(cold)).toFixed(3),
});

await node.stop();
await world.close();
