import type { FastifyReply } from "fastify";

export interface OpenAiErrorBody {
  message: string;
  type: string;
  param?: string | null;
  code?: string | null;
}

/** Sends an OpenAI-shaped error: `{"error":{"message","type","param","code"}}`. */
export function sendOpenAiError(reply: FastifyReply, status: number, error: OpenAiErrorBody, headers: Record<string, string> = {}) {
  return reply
    .code(status)
    .headers(headers)
    .type("application/json")
    .send({ error: { message: error.message, type: error.type, param: error.param ?? null, code: error.code ?? null } });
}
