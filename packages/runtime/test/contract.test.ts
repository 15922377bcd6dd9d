import { execFileSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ModelCatalogService } from "../src/gen/llmlb/node/v1/catalog_pb.js";
import { InferenceService } from "../src/gen/llmlb/node/v1/inference_pb.js";
import { ResolverService } from "../src/gen/llmlb/node/v1/resolver_pb.js";
import { Health } from "../src/gen/grpc/health/v1/health_pb.js";
import { ResolveRequestSchema } from "../src/gen/llmlb/node/v1/resolver_pb.js";
import { ChatRequestSchema, ChatResponseSchema, CompleteResponseSchema } from "../src/gen/llmlb/node/v1/inference_pb.js";
import { RegisterModelRequestSchema } from "../src/gen/llmlb/node/v1/catalog_pb.js";
import { ModelSchema, ModelState } from "../src/gen/llmlb/node/v1/model_pb.js";

const root = path.resolve(import.meta.dirname, "../../..");

const methodsOf = (service: { methods: Array<{ name: string; methodKind: string }> }) =>
  Object.fromEntries(service.methods.map((m) => [m.name, m.methodKind]));

describe("protobuf contract", () => {
  it("defines every catalog method with the right streaming kind", () => {
    expect(ModelCatalogService.typeName).toBe("llmlb.node.v1.ModelCatalogService");
    expect(methodsOf(ModelCatalogService)).toMatchObject({
      ListModels: "unary",
      GetModel: "unary",
      RegisterModel: "unary",
      DeleteModel: "unary",
      WatchModels: "server_streaming",
    });
  });

  it("defines the resolver and inference services", () => {
    expect(methodsOf(ResolverService)).toEqual({ Resolve: "server_streaming", ListSources: "unary" });
    expect(methodsOf(InferenceService)).toEqual({
      Chat: "server_streaming",
      Complete: "server_streaming",
      Embed: "unary",
      LoadModel: "unary",
      UnloadModel: "unary",
      ListLoadedModels: "unary",
      GetHostStatus: "unary",
      Rerank: "unary",
      Tokenize: "unary",
      Detokenize: "unary",
    });
    expect(Health.typeName).toBe("grpc.health.v1.Health");
  });

  it("keeps the field names other programs rely on", () => {
    const fields = (schema: { fields: Array<{ name: string }> }) => schema.fields.map((f) => f.name);
    const oneof = ResolveRequestSchema.oneofs.find((o) => o.name === "target");
    expect(oneof?.fields.map((f) => f.name)).toEqual(["model_id", "adapter_ref"]);
    expect(fields(ChatRequestSchema)).toEqual(expect.arrayContaining([
      "model_id", "messages", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop", "adapter_ids",
      "tools", "tool_choice", "parallel_tool_calls", "response_format", "reasoning", "logprobs", "top_logprobs", "logit_bias",
    ]));
    expect(ChatRequestSchema.fields.find((f) => f.name === "messages")?.message?.fields.map((f) => f.name)).toEqual(
      expect.arrayContaining(["role", "content", "tool_calls", "tool_call_id", "reasoning"]),
    );
    expect(fields(ChatResponseSchema)).toEqual(expect.arrayContaining(["delta", "finish_reason", "usage", "reasoning", "tool_calls", "logprobs"]));
    expect(fields(CompleteResponseSchema)).toEqual(expect.arrayContaining(["delta", "finish_reason", "usage", "logprobs"]));
    for (const schema of [ChatResponseSchema, CompleteResponseSchema]) {
      const usage = schema.fields.find((f) => f.name === "usage")?.message;
      expect(usage?.fields.map((f) => f.name)).toEqual(expect.arrayContaining(["prompt_tokens", "completion_tokens"]));
    }
    expect(fields(RegisterModelRequestSchema)).toEqual(expect.arrayContaining(["repo", "filename", "display_name"]));
  });

  it("describes models with every field the catalog needs", () => {
    expect(ModelSchema.fields.map((f) => f.name)).toEqual(expect.arrayContaining([
      "id", "display_name", "description", "repo", "filename", "files", "size_bytes", "required_memory_bytes", "tags",
      "capabilities", "quantization", "parameter_count", "origin", "state", "progress", "failure_reason", "hub_info", "local",
    ]));
    expect(Object.keys(ModelState).filter((k) => Number.isNaN(Number(k)))).toEqual(
      expect.arrayContaining(["AVAILABLE", "DOWNLOADING", "READY", "LOADED", "FAILED"]),
    );
  });

  it("passes buf lint (STANDARD)", () => {
    const out = execFileSync(path.join(root, "node_modules/.bin/buf"), ["lint"], { cwd: root, encoding: "utf8" });
    expect(out.trim()).toBe("");
  });

  it("has generated code up to date with the .proto files", () => {
    const out = execFileSync(path.join(root, "node_modules/.bin/buf"), ["generate", "--output", path.join(root, ".test-tmp/gen-check")], {
      cwd: root, encoding: "utf8",
    });
    expect(out.trim()).toBe("");
    const diff = execFileSync("git", ["diff", "--no-index", "--stat", "packages/runtime/src/gen", ".test-tmp/gen-check/packages/runtime/src/gen"], {
      cwd: root, encoding: "utf8",
    }).trim();
    expect(diff).toBe("");
  });
});
