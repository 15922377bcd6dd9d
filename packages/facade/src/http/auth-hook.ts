import type { FastifyReply, FastifyRequest } from "fastify";
import { AUTH_HELP, bearerMatches } from "@llmlb/runtime";
import { sendOpenAiError } from "./openai-error.js";

const PROTECTED = /^\/(v0|v1|metrics)(\/|$|\?)/;

/** Requires the API key on /v0, /v1 and /metrics when one is configured; Connect paths use the interceptor. */
export function apiKeyHook(apiKey: string) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!apiKey || !PROTECTED.test(request.url)) return;
    const header = request.headers.authorization;
    if (bearerMatches(header, apiKey)) return;
    await sendOpenAiError(reply, 401, {
      message: `${header ? "invalid API key" : "missing API key"}: ${AUTH_HELP}`,
      type: "invalid_request_error",
      code: "invalid_api_key",
    });
  };
}
