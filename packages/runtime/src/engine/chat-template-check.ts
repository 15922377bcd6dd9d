import type { RenderOutcome, TemplateSandbox } from "./template-sandbox.js";

const LONG_TEXT = "The quick brown fox jumps over the lazy dog. ".repeat(90);

/**
 * Conversations a chat template is test-rendered with: the shortest one, one with every role, and a
 * long one (64 turns of ~4 KB), so a template whose cost grows with its input shows it here.
 */
const SAMPLES: ReadonlyArray<Record<string, unknown>> = [
  { messages: [{ role: "user", content: "Hello" }] },
  {
    messages: [
      { role: "system", content: "You are helpful." },
      { role: "user", content: "Hello" },
      { role: "assistant", content: "Hi! How can I help?" },
      { role: "user", content: "Tell me a joke." },
    ],
  },
  { messages: Array.from({ length: 64 }, (_, i) => ({ role: i % 2 === 0 ? "user" : "assistant", content: LONG_TEXT })) },
].map((sample) => ({ ...sample, add_generation_prompt: true, bos_token: "<s>", eos_token: "</s>" }));

/** Why a template was refused, or undefined when it is usable. */
export interface TemplateProblem {
  kind: Exclude<RenderOutcome, { ok: true }>["kind"];
  message: string;
}

/**
 * Test-renders a chat template with the sample conversations inside the sandbox's bounds. A render
 * that runs out of time, memory or output size refuses the template at once. With `strict`
 * (a registered template, which the node will render itself) a syntax error, or every sample
 * failing, refuses it too; a template may still refuse some conversations (e.g. a system turn).
 */
export async function chatTemplateProblem(sandbox: TemplateSandbox, template: string, strict: boolean): Promise<TemplateProblem | undefined> {
  let firstError: TemplateProblem | undefined;
  let rendered = false;
  for (const sample of SAMPLES) {
    const outcome = await sandbox.render(template, sample);
    if (outcome.ok) {
      rendered = true;
      continue;
    }
    if (outcome.kind === "timeout" || outcome.kind === "size" || outcome.kind === "memory") return outcome;
    if (outcome.kind === "parse") return strict ? outcome : undefined;
    firstError ??= outcome;
  }
  return strict && !rendered ? firstError : undefined;
}
