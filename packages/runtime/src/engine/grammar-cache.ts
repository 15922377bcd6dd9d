import type { Llama, LlamaGrammar } from "node-llama-cpp";
import { LlmlbError } from "../errors/index.js";
import { grammarSchema } from "./json-schema.js";
import type { JsonSchema } from "./types.js";

const MAX_GRAMMARS = 32;

type SchemaParam = Parameters<Llama["createGrammarForJsonSchema"]>[0];

/**
 * JSON-schema grammars by schema text, most recently used kept: agents send the same schema with
 * every request, and building a grammar costs as much as several tokens. A grammar holds no
 * sampling state, so requests share it.
 */
export class GrammarCache {
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();

  constructor(private readonly llama: Llama) {}

  forSchema(schema: JsonSchema, field: string): Promise<LlamaGrammar> {
    const key = JSON.stringify(schema);
    let grammar = this.grammars.get(key);
    if (grammar) {
      this.grammars.delete(key);
    } else {
      const converted = grammarSchema(schema, field);
      // What llama.cpp itself cannot take (a bound so large its grammar does not parse) is the schema's fault, said as such.
      grammar = this.llama.createGrammarForJsonSchema(converted as SchemaParam).catch((err: unknown) => {
        throw new LlmlbError("INVALID_ARGUMENT", `${field}: llama.cpp could not build a grammar from this schema (${(err as Error).message}); simplify it (smaller minLength or minItems, fewer alternatives)`, { field });
      });
      grammar.catch(() => this.grammars.delete(key));
    }
    this.grammars.set(key, grammar);
    if (this.grammars.size > MAX_GRAMMARS) this.grammars.delete(this.grammars.keys().next().value!);
    return grammar;
  }
}

const caches = new WeakMap<Llama, GrammarCache>();

/** The grammar cache of a llama.cpp instance. */
export function grammarCache(llama: Llama): GrammarCache {
  let cache = caches.get(llama);
  if (!cache) caches.set(llama, (cache = new GrammarCache(llama)));
  return cache;
}
