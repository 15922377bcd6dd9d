/**
 * node-llama-cpp called directly, in a process of its own: the baseline of every stream ratio
 * (see directChat in bench-kit.ts). It loads the model once, then answers each { prompt, maxTokens }
 * with one generation timed here, on its own clock: tokens, total ms, time to the first text.
 *
 *   argv[2]: JSON { modelPath, gpu, contextSize, jsonSchema? }
 */
import { LlamaChat, type ChatHistoryItem, type LlamaContext } from "node-llama-cpp";
import { loadLlama, silentLogger } from "@llmlb/runtime";
import { serveTimedRuns } from "./timed-run.js";

interface Init {
  modelPath: string;
  gpu: Parameters<typeof loadLlama>[0];
  contextSize: number;
  jsonSchema?: object;
}

const init = JSON.parse(process.argv[2] ?? "{}") as Init;
const llama = await loadLlama(init.gpu, 1, silentLogger());
const model = await llama.loadModel({ modelPath: init.modelPath });
const context: LlamaContext = await model.createContext({ contextSize: init.contextSize, sequences: 1, threads: 1 });
const chat = new LlamaChat({ contextSequence: context.getSequence() });
const grammar = init.jsonSchema
  ? await llama.createGrammarForJsonSchema(init.jsonSchema as Parameters<typeof llama.createGrammarForJsonSchema>[0])
  : undefined;

async function run(prompt: string, maxTokens: number) {
  const history: ChatHistoryItem[] = [{ type: "user", text: prompt }, { type: "model", response: [] }];
  const started = performance.now();
  let firstTokenMs = 0;
  let tokens = 0;
  await chat.generateResponse(history, {
    temperature: 0,
    maxTokens,
    repeatPenalty: false,
    ...(grammar ? { grammar } : {}),
    onTextChunk: () => {
      if (firstTokenMs === 0) firstTokenMs = performance.now() - started;
    },
    onToken: (t) => (tokens += t.length),
  });
  return { tokens, ms: performance.now() - started, firstTokenMs };
}

serveTimedRuns(run, async () => {
  await context.dispose();
  await model.dispose();
  await llama.dispose();
});
