import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { ListModelsResponseSchema, type ListModelsResponse } from "../gen/llmlb/node/v1/catalog_pb.js";
import { ModelSchema, type Model } from "../gen/llmlb/node/v1/model_pb.js";
import type { ListResult } from "./catalog.js";

const MODELS_FIELD = ListModelsResponseSchema.fields.find((f) => f.localName === "models")!.number;

/** Wire bytes of each Model message (length-prefixed), kept as long as the message is. */
const encoded = new WeakMap<Model, Uint8Array>();

function bytesOf(model: Model): Uint8Array {
  let bytes = encoded.get(model);
  if (!bytes) {
    const body = toBinary(ModelSchema, model);
    bytes = new BinaryWriter().uint32(body.byteLength).raw(body).finish();
    encoded.set(model, bytes);
  }
  return bytes;
}

/**
 * A ListModels response whose models are written from cached wire bytes, so a page of 100 costs a
 * copy instead of an encode (the largest per-call cost of ListModels). The catalog rebuilds a
 * Model message whenever the model changes, so cached bytes are never stale. The bytes travel as
 * field `models` through protobuf-es's unknown-field passthrough, which only binary encoding
 * writes: use this only for binary codecs (see isBinaryCodec).
 */
export function preEncodedListResponse(page: ListResult): ListModelsResponse {
  const response = create(ListModelsResponseSchema, { nextPageToken: page.nextPageToken, totalSize: page.totalSize });
  response.$unknown = page.models.map((model) => ({ no: MODELS_FIELD, wireType: WireType.LengthDelimited, data: bytesOf(model) }));
  return response;
}

/** True when the request's codec is protobuf binary (gRPC, gRPC-web, Connect proto), false for JSON or unknown. */
export function isBinaryCodec(contentType: string | null): boolean {
  if (!contentType) return false;
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  return ["application/grpc", "application/grpc+proto", "application/grpc-web", "application/grpc-web+proto", "application/proto", "application/connect+proto"].includes(type);
}
