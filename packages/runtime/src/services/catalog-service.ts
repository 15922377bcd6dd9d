import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Catalog } from "../catalog/catalog.js";
import { isBinaryCodec, preEncodedListResponse } from "../catalog/encoded-page.js";
import { parseListRequest } from "../catalog/list-query.js";
import { linkedSignal } from "../events/linked-signal.js";
import {
  DeleteAdapterResponseSchema,
  DeleteModelResponseSchema,
  GetModelResponseSchema,
  ListAdaptersResponseSchema,
  ListModelsResponseSchema,
  ModelCatalogService,
  RegisterModelResponseSchema,
  WatchModelsResponseSchema,
} from "../gen/llmlb/node/v1/catalog_pb.js";
import { AdapterSchema } from "../gen/llmlb/node/v1/model_pb.js";

/** Response header carrying a note about something asked for that did not happen (no proto field for it). */
export const NOTICE_HEADER = "llmlb-notice";

/** ModelCatalogService over a Catalog. Streams end when the client cancels or `endStreams` aborts (the node drains). */
export function createCatalogService(catalog: Catalog, endStreams: AbortSignal): ServiceImpl<typeof ModelCatalogService> {
  return {
    listModels(req, ctx) {
      const page = catalog.list(parseListRequest(req));
      if (isBinaryCodec(ctx.requestHeader.get("content-type"))) return preEncodedListResponse(page);
      return create(ListModelsResponseSchema, { models: page.models, nextPageToken: page.nextPageToken, totalSize: page.totalSize });
    },

    getModel(req) {
      return create(GetModelResponseSchema, { model: catalog.get(req.modelId) });
    },

    async registerModel(req, ctx) {
      const { model, warnings, availableFiles } = await catalog.register(req, ctx.signal);
      return create(RegisterModelResponseSchema, { model, warnings, availableFiles });
    },

    async deleteModel(req, ctx) {
      const { model, freedBytes, notice } = await catalog.delete(req.modelId, req.removeRegistration);
      if (notice) ctx.responseHeader.set(NOTICE_HEADER, notice);
      return create(DeleteModelResponseSchema, { ...(model ? { model } : {}), freedBytes: BigInt(freedBytes) });
    },

    async *watchModels(req, ctx) {
      const { signal, dispose } = linkedSignal(ctx.signal, endStreams);
      try {
        for await (const item of catalog.watch(req.modelIds, req.includeInitial, signal)) {
          yield create(WatchModelsResponseSchema, { model: item.model, removed: item.removed });
        }
      } finally {
        dispose();
      }
    },

    async listAdapters() {
      const adapters = await catalog.listAdapters();
      return create(ListAdaptersResponseSchema, {
        adapters: adapters.map((a) =>
          create(AdapterSchema, {
            id: a.id,
            ref: a.ref,
            path: a.path,
            sizeBytes: BigInt(a.sizeBytes),
            sha256: a.sha256 ?? "",
            source: a.source ?? "",
            ...(a.downloadedAt !== undefined ? { downloadedAt: timestampFromMs(a.downloadedAt) } : {}),
          }),
        ),
      });
    },

    async deleteAdapter(req) {
      const { freedBytes } = await catalog.deleteAdapter(req.adapterId);
      return create(DeleteAdapterResponseSchema, { freedBytes: BigInt(freedBytes) });
    },
  };
}
