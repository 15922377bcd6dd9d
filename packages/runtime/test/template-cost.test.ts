import { describe, expect, it } from "vitest";
import { linearTemplateCost, renderBound } from "../src/engine/template-cost.js";
import { DEFAULT_TEMPLATE_LIMITS } from "../src/engine/template-sandbox.js";
import { CHATML_TEMPLATE, THINKING_TEMPLATE, TOOLS_TEMPLATE } from "../../../testkit/gguf/tiny-gguf.js";

const loop = (body: string) => `{% for m in messages %}${body}{% endfor %}`;

describe("chat templates whose render cost is provably linear (rendered once, without the sandbox)", () => {
  it.each([
    ["ChatML", CHATML_TEMPLATE],
    ["a thinking template", THINKING_TEMPLATE],
    ["a Hermes-style tools template (nested loop over a message's calls, the previous message's role)", TOOLS_TEMPLATE],
    ["a reversed walk at top level", "{% for m in messages[::-1] %}{{ m.content }}{% endfor %}"],
    ["a replace that takes out more than it puts in", loop("{{ m.content.replace('<think>', '') }}")],
    ["a namespace flag set in the loop", "{% set ns = namespace(seen=false) %}" + loop("{% set ns.seen = true %}{{ m.content | trim }}") + "{{ ns.seen }}"],
  ])("%s", (_name, template) => {
    expect(linearTemplateCost(template)).toBeDefined();
  });
});

describe("chat templates that keep the per-request sandbox render", () => {
  it.each([
    ["a loop over range (the hostile-template trap)", loop("{% if m.content == 'boom' %}{% for i in range(100000000) %}x{% endfor %}{% endif %}{{ m.content }}")],
    ["a loop over all messages inside the loop over messages", loop("{% for n in messages %}{{ n.content }}{% endfor %}")],
    ["one message output for every message", loop("{{ messages[0].content }}")],
    ["the tools output for every message", loop("{{ tools | tojson }}")],
    ["a filter over all messages in an index", loop("{% if messages[messages | length - 1].role == 'tool' %}x{% endif %}")],
    ["a search through another message", loop("{% if 'x' in messages[0].content %}y{% endif %}")],
    ["a slice copied per message", loop("{% for n in messages[1:] %}{% endfor %}")],
    ["an accumulated string output per message", "{% set ns = namespace(s='') %}" + loop("{% set ns.s = ns.s + m.content %}{{ ns.s }}")],
    ["a recursive macro", "{% macro f(x) %}{{ f(x) }}{% endmacro %}{{ f(1) }}"],
    ["string repetition", "{{ 'x' * 100000000 }}"],
    ["a width argument", loop("{{ m.content | tojson(indent=4) }}")],
    ["a replace that grows the text", loop("{{ m.content.replace('a', 'aaaaaaaaaaaa') }}")],
    ["a long join separator", loop("{{ m.content | list | join('----------') }}")],
    ["a loop over a message's characters", loop("{% for c in m.content %}<b>{{ c }}</b>{% endfor %}")],
    ["a loop over something other than messages or tools", "{% for c in messages[0].content %}{{ c }}{% endfor %}"],
    ["a template that does not parse", "{% for m in messages %}"],
  ])("%s", (_name, template) => {
    expect(linearTemplateCost(template)).toBeUndefined();
  });
});

describe("the per-request bound of a linear template", () => {
  const limit = DEFAULT_TEMPLATE_LIMITS.maxOutputChars;

  it("lets an ordinary chat skip the sandbox and sends a large one through it", () => {
    const cost = linearTemplateCost(CHATML_TEMPLATE)!;
    expect(cost.references).toBeGreaterThan(0);
    expect(renderBound(CHATML_TEMPLATE, cost, { items: 12, textChars: 8_000 })).toBeLessThanOrEqual(limit);
    expect(renderBound(CHATML_TEMPLATE, cost, { items: 40, textChars: 400_000 })).toBeGreaterThan(limit);
  });

  it("counts each value the template writes: writing a message twice counts it twice", () => {
    const once = linearTemplateCost(loop("{{ m.content }}"))!;
    const twice = linearTemplateCost(loop("{{ m.content }}{{ m.content }}"))!;
    expect(twice.references).toBe(once.references + 1);
  });
});
