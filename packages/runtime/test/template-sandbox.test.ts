import { afterAll, describe, expect, it } from "vitest";
import { chatTemplateProblem, TemplateSandbox } from "../src/engine/index.js";
import { CHATML_TEMPLATE } from "../../../testkit/gguf/tiny-gguf.js";
import { TEMPLATE_BOMB } from "../../../testkit/gguf/hostile-gguf.js";

const sandbox = new TemplateSandbox();
afterAll(() => sandbox.close());

const chat = { messages: [{ role: "user", content: "Hi" }], add_generation_prompt: true };

describe("bounded template rendering", () => {
  it("renders ChatML as the GGUF's template would", async () => {
    expect(await sandbox.render(CHATML_TEMPLATE, chat)).toEqual({ ok: true, output: "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n" });
  });

  it("stops a loop bomb at the time budget and keeps rendering afterwards", async () => {
    const outcome = await sandbox.render(TEMPLATE_BOMB, chat);
    expect(outcome).toMatchObject({ ok: false, kind: "timeout", message: "the render took longer than 100 ms" });
    expect(await sandbox.render("{{ messages[0].content }}!", chat)).toEqual({ ok: true, output: "Hi!" });
  });

  it("refuses output above the size limit and a template that exhausts its thread's heap", async () => {
    const small = new TemplateSandbox({ timeMs: 2000, maxOutputChars: 1000, heapMb: 32 });
    try {
      expect(await small.render("{% for i in range(2000) %}x{% endfor %}", chat)).toMatchObject({ ok: false, kind: "size" });
      const memory = await small.render("{% set s = 'xxxxxxxxxxxxxxxx' %}{% for i in range(40) %}{% set s = s + s %}{% endfor %}{{ s|length }}", chat);
      expect(memory.ok).toBe(false);
      expect(await small.render("ok", chat)).toEqual({ ok: true, output: "ok" });
    } finally {
      await small.close();
    }
  });

  it("reports a syntax error as a parse problem", async () => {
    expect(await sandbox.render("{% for %}", chat)).toMatchObject({ ok: false, kind: "parse" });
  });
});

describe("chat template test render", () => {
  it("accepts ChatML and a template that refuses system turns, refuses bombs and (strictly) broken syntax", async () => {
    expect(await chatTemplateProblem(sandbox, CHATML_TEMPLATE, true)).toBeUndefined();
    const noSystem = "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{{ m.content }}{% endfor %}";
    expect(await chatTemplateProblem(sandbox, noSystem, true)).toBeUndefined();
    expect(await chatTemplateProblem(sandbox, TEMPLATE_BOMB, false)).toMatchObject({ kind: "timeout" });
    expect(await chatTemplateProblem(sandbox, "{% if %}", true)).toMatchObject({ kind: "parse" });
    expect(await chatTemplateProblem(sandbox, "{% if %}", false)).toBeUndefined();
    expect(await chatTemplateProblem(sandbox, "{{ raise_exception('never') }}", true)).toMatchObject({ kind: "error", message: expect.stringContaining("never") });
  });

  it("catches a template whose cost grows with the conversation", async () => {
    const growing = "{% for m in messages %}{% for i in range(m.content|length * 50) %}.{% endfor %}{% endfor %}";
    // Short conversations render quickly; only the long sample exceeds the bounds.
    expect(await sandbox.render(growing, chat)).toMatchObject({ ok: true });
    expect(await chatTemplateProblem(sandbox, growing, true)).toMatchObject({ kind: expect.stringMatching(/timeout|size/) });
  });
});
