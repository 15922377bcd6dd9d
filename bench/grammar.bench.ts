/**
 * JSON-schema-constrained generation (512 tokens) over gRPC versus node-llama-cpp called directly
 * with the same grammar, same model (the generated tiny llama, CPU, 1 thread, context 1024,
 * greedy), the baseline in a process of its own (directChat), both warmed up (WARM_UP_CALLS in
 * bench-kit.ts), alternating runs, medians. The
 * schema asks for more array items than fit in the token budget, so every run samples exactly
 * TOKENS tokens under the grammar.
 *
 *   grammar_stream_ratio   tokens/s over gRPC (response_format json_schema) / tokens/s direct; target ≥ 0.95
 *
 * Measured twice (see CpuLayout in bench-kit.ts): pinned, then free (names ending in _unpinned).
 *
 *   node --conditions=source --import tsx bench/grammar.bench.ts
 */
import { InferenceService } from "../packages/runtime/src/gen/llmlb/node/v1/inference_pb.js";
import { grpcJsClient } from "../testkit/node/index.js";
import { compareToDirect, directChat, grpcChatRun, printInBothLayouts, type BenchNode, type StreamRun } from "./bench-kit.js";

const TOKENS = 512;
const REPETITIONS = 15;
const SCHEMA = {
  type: "object",
  properties: {
    title: { type: "string", maxLength: 40 },
    tags: { type: "array", items: { type: "string", maxLength: 12 }, minItems: 600 },
  },
  required: ["title", "tags"],
  additionalProperties: false,
} as const;

const prompt = (i: number) => `Describe a book as JSON, number ${i}`;

async function measure(bench: BenchNode): Promise<Record<string, string | number>> {
  const client = grpcJsClient(InferenceService, bench.node.grpcUrl);
  const viaGrpc = (i: number): Promise<StreamRun> =>
    grpcChatRun(client, {
      modelId: bench.modelId,
      messages: [{ role: "user", content: prompt(i) }],
      temperature: 0,
      maxTokens: TOKENS,
      responseFormat: { type: "json_schema", schemaJson: JSON.stringify(SCHEMA) },
    });

  // node-llama-cpp on the same file with the grammar built (once) from the same schema.
  const direct = await directChat(bench, 1024, { jsonSchema: SCHEMA });
  const grpc = await compareToDirect({ label: "gRPC json_schema", tokens: TOKENS, repetitions: REPETITIONS, prompt, direct, measured: viaGrpc });
  client.close();
  await direct.dispose();
  return {
    grammar_direct_tokens_per_s: grpc.directRate.toFixed(0),
    grammar_grpc_tokens_per_s: grpc.measuredRate.toFixed(0),
    grammar_stream_ratio: grpc.ratio.toFixed(3),
  };
}

await printInBothLayouts({ LLMLB_PARALLELISM: "1" }, { grammar_tokens_per_run: TOKENS, grammar_repetitions: REPETITIONS }, measure);
