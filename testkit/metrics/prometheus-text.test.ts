import { describe, expect, it } from "vitest";
import { parsePrometheusText } from "./prometheus-text.js";

describe("parsePrometheusText", () => {
  it("reads histogram samples with le first, as prom-client writes them", () => {
    const families = parsePrometheusText(
      '# HELP x_seconds h\n# TYPE x_seconds histogram\nx_seconds_bucket{le="+Inf",method="A/B"} 2\nx_seconds_count{method="A/B"} 2\n',
    );
    expect(families.get("x_seconds")?.samples).toEqual([
      { name: "x_seconds_bucket", labels: { le: "+Inf", method: "A/B" }, value: 2 },
      { name: "x_seconds_count", labels: { method: "A/B" }, value: 2 },
    ]);
  });

  it("reads NaN and infinities in any case, as Prometheus does (prom-client writes NaN as \"Nan\")", () => {
    const families = parsePrometheusText("# TYPE y gauge\ny 1\n# TYPE z gauge\nz Nan\n# TYPE w gauge\nw +Inf\n# TYPE v gauge\nv -inf\n");
    expect([...families.values()].map((f) => f.samples[0]!.value)).toEqual([1, NaN, Infinity, -Infinity]);
  });

  it("refuses samples without a TYPE, bad values and malformed labels, naming the line", () => {
    expect(() => parsePrometheusText("y 1\n")).toThrow(/line 1: sample y has no # TYPE/);
    expect(() => parsePrometheusText("# TYPE y gauge\ny one\n")).toThrow(/line 2: "one" is not a sample value/);
    expect(() => parsePrometheusText('# TYPE y gauge\ny{a=b} 1\n')).toThrow(/line 2: malformed labels/);
  });
});
