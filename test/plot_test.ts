/**
 * The SVG charts of src/plot.ts: well-formed documents, category labels and band rectangles where
 * they belong, equal series both drawn, and bad input rejected with the argument named.
 */
import assert from "node:assert/strict";
import { barChartSvg, lineChartSvg } from "../src/plot.ts";

/**
 * Checks that an SVG document is well-formed XML as far as the chart writer goes: one root
 * `<svg>`, every tag closed in order, quoted attributes, and no unescaped `&` or `<` in text.
 * Returns the element names in document order.
 */
function assertWellFormed(svg: string): string[] {
  const names: string[] = [];
  const stack: string[] = [];
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  let at = 0, text = "";
  while (at < svg.length) {
    const lt = svg.indexOf("<", at);
    text += svg.slice(at, lt < 0 ? svg.length : lt);
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(svg);
    assert.ok(m !== null, `malformed tag at ${lt}: ${svg.slice(lt, lt + 60)}`);
    const [whole, close, name, , selfClose] = m;
    if (close) {
      assert.equal(stack.pop(), name, `</${name}> closes the wrong element at ${lt}`);
    } else {
      if (stack.length === 0) assert.equal(names.length, 0, "more than one root element");
      names.push(name);
      if (!selfClose) stack.push(name);
    }
    at = lt + whole.length;
  }
  assert.deepEqual(stack, [], "unclosed elements");
  assert.equal(names[0], "svg");
  assert.doesNotMatch(text, /&(?!amp;|lt;|gt;|quot;)/, "unescaped & in text");
  return names;
}

/** The `<rect class="bar" …>` elements of a chart, with their series index and geometry. */
function bars(svg: string): { series: number; x: number; y: number; h: number; fill: string }[] {
  return [...svg.matchAll(/<rect class="bar" ([^>]*)\/>/g)].map((m) => {
    const attr = (name: string): string => new RegExp(`${name}="([^"]*)"`).exec(m[1])![1];
    return {
      series: Number(attr("data-series")),
      x: Number(attr("x")),
      y: Number(attr("y")),
      h: Number(attr("height")),
      fill: attr("fill"),
    };
  });
}

const perClass = {
  title: "Per-class top-1 accuracy, synthetic-LT <10 classes> & more",
  xLabel: "class (training images)",
  yLabel: "top-1 accuracy (%)",
  categories: ["apple", "bee", "cat", "dog", "eel"],
  notes: ["n=500", "n=120", "n=40", "n=9", "n=2"],
  yRange: [0, 100] as const,
  bands: [
    { from: 0, to: 2, label: "many-shot" },
    { from: 2, to: 3, label: "medium-shot" },
    { from: 3, to: 5, label: "few-shot" },
  ],
  series: [
    { name: "softmax", values: [90, 60, 0, 0, 0] },
    { name: "seql", values: [85, 60, 30, 0, NaN] },
  ],
};

Deno.test("barChartSvg: well-formed, with class labels, notes, bands and a legend", () => {
  const svg = barChartSvg([perClass]);
  const names = assertWellFormed(svg);
  assert.ok(names.includes("g") && names.includes("rect") && names.includes("text"));
  assert.ok(svg.includes("synthetic-LT &lt;10 classes&gt; &amp; more"), "the title is escaped");
  for (const c of perClass.categories) assert.ok(svg.includes(`>${c}</text>`), `label ${c}`);
  for (const n of perClass.notes) assert.ok(svg.includes(`>${n}</text>`), `note ${n}`);
  for (const b of perClass.bands) assert.ok(svg.includes(`>${b.label}</text>`), b.label);
  assert.equal([...svg.matchAll(/<rect class="band"/g)].length, 3);
  assert.ok(svg.includes(">softmax</text>") && svg.includes(">seql</text>"), "legend");
  // The category labels are written in the order given, under their slots from left to right.
  const xs = [...svg.matchAll(/<text class="category" x="([\d.]+)"/g)].map((m) => Number(m[1]));
  assert.equal(xs.length, 5);
  assert.deepEqual([...xs].sort((a, b) => a - b), xs);
  // The band rectangles tile the slots: many covers two of five, few the last two.
  const bandX = [...svg.matchAll(/<rect class="band" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/g)]
    .map((m) => [Number(m[1]), Number(m[2])]);
  assert.ok(Math.abs(bandX[0][1] - 2 * bandX[1][1]) < 0.5, `band widths ${bandX}`);
  assert.ok(Math.abs(bandX[0][0] + bandX[0][1] - bandX[1][0]) < 0.5, "bands touch");
});

Deno.test("barChartSvg: two series with equal values are both drawn, side by side, zeros too", () => {
  const svg = barChartSvg([perClass]);
  const all = bars(svg);
  // 5 + 4 bars: NaN (no test image) is the only value left out.
  assert.equal(all.filter((b) => b.series === 0).length, 5);
  assert.equal(all.filter((b) => b.series === 1).length, 4);
  const a = all.filter((b) => b.series === 0), b = all.filter((b) => b.series === 1);
  // Slot 1: both 60 → same height, different x, different colour.
  assert.equal(a[1].h, b[1].h);
  assert.equal(a[1].y, b[1].y);
  assert.ok(b[1].x > a[1].x, "the second series sits to the right of the first");
  assert.notEqual(a[1].fill, b[1].fill);
  // Slot 3: both 0 → a visible stub for each, sitting on the axis.
  assert.ok(a[3].h >= 2 && b[3].h >= 2, `zero bars ${a[3].h}, ${b[3].h}`);
  assert.equal(a[3].y + a[3].h, b[3].y + b[3].h);
  assert.notEqual(a[3].x, b[3].x);
  // A taller value is a taller bar.
  assert.ok(a[0].h > b[2].h && b[2].h > b[3].h);
});

Deno.test("barChartSvg: log axis, value labels, many categories turn their labels", () => {
  const ratio = barChartSvg([{
    title: "ratio",
    xLabel: "group",
    yLabel: "G+/G-",
    categories: ["rare", "common", "frequent"],
    logY: true,
    valueLabel: (v) => v.toPrecision(3),
    series: [
      { name: "CE", values: [0.143, 0.872, 1.14] },
      { name: "EQL", values: [0.165, 0.946, 1.14] },
    ],
  }]);
  assertWellFormed(ratio);
  assert.equal(bars(ratio).length, 6);
  for (const t of ["0.143", "0.165", "0.872", "0.946"]) assert.ok(ratio.includes(`>${t}</text>`));
  assert.equal([...ratio.matchAll(/>1\.14<\/text>/g)].length, 2, "both equal bars are labelled");

  const names = Array.from({ length: 100 }, (_, i) => `class_name_${i}`);
  const wide = barChartSvg([{
    title: "100 classes",
    xLabel: "class",
    yLabel: "accuracy",
    categories: names,
    series: [{ name: "a", values: names.map((_, i) => i / 100) }],
  }]);
  assertWellFormed(wide);
  assert.ok(/rotate\(-90\)[^>]*>class_name_0</.test(wide), "long labels are turned vertical");
  const width = Number(/<svg[^>]* width="(\d+)"/.exec(wide)![1]);
  assert.ok(width >= 100 * 14, `each of 100 slots gets at least 14 px, width ${width}`);
});

Deno.test("barChartSvg: bad input names the argument", () => {
  assert.throws(() => barChartSvg([]), /panels must hold at least one panel/);
  assert.throws(
    () => barChartSvg([{ ...perClass, categories: [] }]),
    /panels\[0\]\.categories must not be empty/,
  );
  assert.throws(
    () => barChartSvg([{ ...perClass, notes: ["n=1"] }]),
    /panels\[0\]\.notes must have 5 entries/,
  );
  assert.throws(
    () => barChartSvg([{ ...perClass, series: [{ name: "a", values: [1, 2] }] }]),
    /panels\[0\]\.series\[0\]\.values must have 5 values/,
  );
  assert.throws(() => barChartSvg([{ ...perClass, series: [] }]), /at least one series/);
});

Deno.test("lineChartSvg: well-formed, legend above the plot, equal curves both drawn", () => {
  const values = [1e-3, 2e-3, 5e-3, 1e-2, 2e-2];
  const svg = lineChartSvg([{
    title: "gradient & norm",
    xLabel: "category",
    yLabel: "norm",
    logY: true,
    bands: [{ from: 0, to: 2, label: "frequent" }, { from: 2, to: 5, label: "rare" }],
    series: [{ name: "CE", values }, { name: "EQL", values }],
  }]);
  assertWellFormed(svg);
  const lines = [
    ...svg.matchAll(
      /<polyline class="series" [^>]*stroke="([^"]+)" stroke-width="([\d.]+)"[^>]*points="([^"]*)"/g,
    ),
  ];
  assert.equal(lines.length, 2);
  assert.equal(lines[0][3], lines[1][3], "same points");
  assert.notEqual(lines[0][1], lines[1][1], "different colours");
  // The later curve is narrower, so the one under it still shows along its edges.
  assert.ok(Number(lines[0][2]) > Number(lines[1][2]));
  // Legend and band names sit above the top of the plotting area, clear of the data.
  const plotTop = Math.min(
    ...[...svg.matchAll(/<rect class="band" x="[\d.]+" y="([\d.]+)"/g)].map((m) => Number(m[1])),
  );
  assert.ok(Number.isFinite(plotTop));
  for (const label of ["CE", "EQL", "frequent", "rare"]) {
    const y = Number(new RegExp(`y="([\\d.]+)"[^>]*>${label}</text>`).exec(svg)![1]);
    assert.ok(y < plotTop, `${label} at y ${y}, plot starts at ${plotTop}`);
  }
  const ys = lines.flatMap((l) => l[3].split(" ").map((p) => Number(p.split(",")[1])));
  assert.ok(ys.every((y) => y >= plotTop), "the curves stay inside the plotting area");
});

Deno.test("lineChartSvg: smoothing draws the measured curve faint and the moving average bold", () => {
  const noisy = Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? 1 : 3));
  const svg = lineChartSvg([{
    title: "t",
    xLabel: "x",
    yLabel: "y",
    smooth: 5,
    series: [{ name: "a", values: noisy }],
  }]);
  assertWellFormed(svg);
  const raw = [...svg.matchAll(/<polyline class="series-raw"[^>]*points="([^"]*)"/g)];
  const bold = [...svg.matchAll(/<polyline class="series"[^>]*points="([^"]*)"/g)];
  assert.equal(raw.length, 1);
  assert.equal(bold.length, 1);
  const spread = (pts: string): number => {
    const ys = pts.split(" ").slice(5, -5).map((p) => Number(p.split(",")[1]));
    return Math.max(...ys) - Math.min(...ys);
  };
  assert.ok(spread(bold[0][1]) < spread(raw[0][1]) / 3, "the average is much smoother");
  assert.throws(
    () => lineChartSvg([{ title: "t", xLabel: "x", yLabel: "y", smooth: 0, series: [] }]),
    /series must hold at least one series/,
  );
  assert.throws(
    () =>
      lineChartSvg([{
        title: "t",
        xLabel: "x",
        yLabel: "y",
        smooth: 1.5,
        series: [{ name: "a", values: [1] }],
      }]),
    /panels\[0\]\.smooth must be a positive integer, got 1\.5/,
  );
});
