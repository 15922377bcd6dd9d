/**
 * The node's InferenceEngine in a process of its own, with no runner boundary and no gRPC: the
 * baseline of the runner figures (see engineBaseline in bench-kit.ts). It answers each
 * { prompt, maxTokens } with one chat, timed here, on its own clock: tokens, total ms, time to
 * the first delta.
 *
 *   argv[2]: JSON { settings, located } (the engine's settings and the model's file and catalog entry)
 */
import { InferenceEngine, silentLogger, type EngineSettings, type LocatedModel } from "@llmlb/runtime";

interface Init {
  settings: EngineSettings;
  located: LocatedModel;
}
type Ask = { t: "run"; prompt: string; maxTokens: number } | { t: "close" };

const init = JSON.parse(process.argv[2] ?? "{}") as Init;
const engine = new InferenceEngine({
  settings: init.settings,
  models: { locate: () => Promise.resolve(init.located) },
  adapters: { locate: (id) => Promise.reject(new Error(`the engine baseline has no adapter ${id}`)) },
  logger: silentLogger(),
});

async function run(prompt: string, maxTokens: number) {
  const started = performance.now();
  let firstTokenMs = 0;
  let tokens = 0;
  for await (const event of engine.chat({ modelId: init.located.entry.id, messages: [{ role: "user", content: prompt }], temperature: 0, maxTokens })) {
    if (event.type === "delta" && firstTokenMs === 0) firstTokenMs = performance.now() - started;
    if (event.type === "end") tokens = event.usage.completionTokens;
  }
  return { tokens, ms: performance.now() - started, firstTokenMs };
}

process.on("message", (ask: Ask) => {
  if (ask.t === "close") {
    void engine.close().then(() => process.exit(0));
    return;
  }
  run(ask.prompt, ask.maxTokens).then(
    (result) => process.send!({ ok: true, result }),
    (err: unknown) => process.send!({ ok: false, error: String(err) }),
  );
});
// A benchmark that dies takes its baseline with it.
process.on("disconnect", () => process.exit(0));
process.send!({ ready: true });
