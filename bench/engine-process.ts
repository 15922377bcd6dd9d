/**
 * The node's InferenceEngine in a process of its own, with no runner boundary and no gRPC: the
 * baseline of the runner figures (see engineBaseline in bench-kit.ts). It answers each
 * { prompt, maxTokens } with one chat, timed here, on its own clock: tokens, total ms, time to
 * the first delta.
 *
 *   argv[2]: JSON { settings, located } (the engine's settings and the model's file and catalog entry)
 */
import { InferenceEngine, silentLogger, type EngineSettings, type LocatedModel } from "@llmlb/runtime";
import { serveTimedRuns, timeGeneration } from "./timed-run.js";

interface Init {
  settings: EngineSettings;
  located: LocatedModel;
}

const init = JSON.parse(process.argv[2] ?? "{}") as Init;
const engine = new InferenceEngine({
  settings: init.settings,
  models: { locate: () => Promise.resolve(init.located) },
  adapters: { locate: (id) => Promise.reject(new Error(`the engine baseline has no adapter ${id}`)) },
  logger: silentLogger(),
});

serveTimedRuns(
  (prompt, maxTokens) => timeGeneration(engine.chat({ modelId: init.located.entry.id, messages: [{ role: "user", content: prompt }], temperature: 0, maxTokens })),
  () => engine.close(),
);
