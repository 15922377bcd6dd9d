import type { FastifyReply, FastifyRequest } from "fastify";
import { rpcAccess, rpcRejection, type ListenerGuard } from "@llmlb/runtime";
import { httpErrorOf } from "./error-mapping.js";
import { sendOpenAiError } from "./openai-error.js";

const header = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/**
 * The HTTP listener's admission, run on every request before its body is read: the guard decides
 * on the route fastify matched (so an encoded path cannot change the family). Refusals go out in
 * the client's protocol: Connect/gRPC-Web for RPC routes, OpenAI-shaped JSON for the REST facade.
 */
export function guardHook(guard: ListenerGuard) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const routePath = request.routeOptions.url;
    try {
      if (request.method === "OPTIONS" && request.headers["access-control-request-method"]) {
        // @fastify/cors answers the preflights it lets through.
        guard.admitPreflight({ target: request.raw.url ?? "", host: request.headers.host, origin: header(request.headers.origin) });
        return;
      }
      const admission = guard.admit({
        method: request.method,
        target: request.raw.url ?? "",
        routePath,
        host: request.headers.host,
        authorization: request.headers.authorization,
        origin: header(request.headers.origin),
        secFetchSite: header(request.headers["sec-fetch-site"]),
        contentLength: request.headers["content-length"],
        address: request.ip,
      });
      if (admission.key) request.log = request.log.child({ key: admission.key });
      reply.raw.once("close", admission.release);
    } catch (err) {
      // An unread body is not drained: the connection closes after the answer.
      if (request.headers["content-length"] || request.headers["transfer-encoding"]) reply.header("connection", "close");
      if (routePath && rpcAccess(routePath)) {
        const answer = rpcRejection(request.headers["content-type"], err);
        await reply.code(answer.status).headers(answer.headers).send(Buffer.from(answer.body));
        return;
      }
      const mapped = httpErrorOf(err);
      await sendOpenAiError(reply, mapped.status, mapped.body, mapped.headers);
    }
  };
}
