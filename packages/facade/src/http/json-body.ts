import type { FastifyInstance } from "fastify";
import secureJson from "secure-json-parse";

/** A JSON body the node cannot take, with what was wrong (answered 400 invalid_json). */
export class JsonBodyError extends Error {
  override readonly name = "JsonBodyError";
}

/**
 * JSON bodies parsed so that a client is told what was wrong: where JSON.parse stopped, or the
 * `__proto__` / `constructor.prototype` key that is refused (it could reach objects' prototypes),
 * instead of Fastify's "Body is not valid JSON" for all of them.
 */
export function parseJsonBodies(app: FastifyInstance): void {
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_request, body, done) => {
    const text = body as string;
    if (text.trim() === "") {
      done(new JsonBodyError("the request body is empty; send a JSON object"), undefined);
      return;
    }
    try {
      done(null, secureJson.parse(text, { protoAction: "error", constructorAction: "error" }));
    } catch (err) {
      const message = (err as Error).message;
      done(
        new JsonBodyError(
          /forbidden prototype property/.test(message)
            ? 'the body has a "__proto__" key, or a "constructor" key holding "prototype", which is refused; remove it'
            : `malformed JSON body: ${message}`,
        ),
        undefined,
      );
    }
  });
}
