/**
 * Minimal SVG charts for per-category results, with no dependency: line charts for long curves
 * (one point per category, categories sorted by frequency) and grouped bar charts for a few
 * categories or groups on a categorical axis (one bar per series in each slot, the slot's name
 * under it). Both take panels stacked vertically, a linear or logarithmic y axis, shaded bands
 * marking groups of categories (rare / common / frequent, many / medium / few) and a legend.
 *
 * The title, the legend and the band names sit in rows above the plotting area and the axis
 * captions outside it, so none of them covers the data. Plain SVG 1.1 text, readable by any
 * browser or `rsvg-convert`.
 *
 * @module
 */

/** One curve (line chart) or one bar per category (bar chart) of a panel. */
export interface ChartSeries {
  /** Legend text. */
  name: string;
  /** One y value per x position; NaN (or a non-positive value on a log axis) leaves a gap. */
  values: ArrayLike<number>;
  /** CSS colour (default: from a fixed palette). */
  color?: string;
}

/** A shaded x range with a label (e.g. the rare categories). */
export interface ChartBand {
  /** First x index of the band. */
  from: number;
  /** One past the last x index. */
  to: number;
  /** Text written above the band. */
  label: string;
  /** CSS fill (default: alternating light greys). */
  fill?: string;
}

/** One panel of a line chart. */
export interface ChartPanel {
  /** Title above the panel. */
  title: string;
  /** Caption of the x axis. */
  xLabel: string;
  /** Caption of the y axis. */
  yLabel: string;
  /** Logarithmic y axis (non-positive values are skipped). */
  logY?: boolean;
  /** The curves, all of the same length. */
  series: ChartSeries[];
  /** Shaded x ranges. */
  bands?: ChartBand[];
  /**
   * Moving-average window in points (default 1: none). Above 1, every series is drawn twice:
   * faint and thin as measured, and bold as the centred moving average over this many points
   * (of log10 values on a log axis), so that noisy curves stay apart.
   */
  smooth?: number;
}

/** One panel of a grouped bar chart: a slot per category, a bar per series in each slot. */
export interface BarPanel {
  /** Title above the panel. */
  title: string;
  /** Caption of the x axis. */
  xLabel: string;
  /** Caption of the y axis. */
  yLabel: string;
  /** Name of each slot, written under it (every value array has this length). */
  categories: readonly string[];
  /** Optional second line under each name (e.g. `n=500`, the training images). */
  notes?: readonly string[];
  /** Logarithmic y axis (bars then start at the bottom of the axis). */
  logY?: boolean;
  /** Fixed y range `[low, high]` on a linear axis (default: 0 to the largest value). */
  yRange?: readonly [number, number];
  /** Writes each bar's value above it, formatted by this function. */
  valueLabel?: (value: number) => string;
  /** The bars: one series per legend entry, one value per category. */
  series: ChartSeries[];
  /** Shaded slot ranges. */
  bands?: ChartBand[];
}

/** Size options of {@linkcode lineChartSvg} and {@linkcode barChartSvg}. */
export interface ChartSize {
  /** Width in pixels (line charts: 900; bar charts: 900, or wider for many slots). */
  width?: number;
  /** Height of each panel in pixels (default 340). */
  height?: number;
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
const BAND_FILL = ["#eeeeee", "#dadada"];
const FONT = 12;
const LEFT = 78;
const RIGHT = 24;
const TITLE_ROW = 28;
const LEGEND_ROW = 18;
const BAND_ROW = 18;

/** Escapes text for an SVG text node or attribute. */
function esc(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

/** Rough width of a text in a sans-serif font, for layout. */
function textWidth(s: string, size = FONT): number {
  return s.length * size * 0.6;
}

/** Short number for tick labels. */
function tick(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-2) return v.toExponential(0).replace("e+", "e");
  return String(Number(v.toPrecision(3)));
}

/** Tick positions covering [lo, hi] on a linear axis: 1, 2 or 5 times a power of ten apart. */
function linearTicks(lo: number, hi: number): number[] {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Number(v.toPrecision(12)));
  }
  return out;
}

/** Whether a value is drawn on the axis. */
function drawable(v: number, logY: boolean): boolean {
  return Number.isFinite(v) && (!logY || v > 0);
}

/** The log10 of the nearest 1, 2 or 5 times a power of ten at or below (above) 10^t. */
function logStep(t: number, way: "up" | "down"): number {
  const k = Math.floor(t + 1e-9);
  const steps = [0, Math.log10(2), Math.log10(5), 1].map((m) => k + m);
  return way === "up"
    ? steps.find((v) => v >= t - 1e-9)!
    : steps.filter((v) => v <= t + 1e-9).at(-1)!;
}

/** A y axis: its range in axis units (log10 on a log axis) and its ticks. */
interface YAxis {
  lo: number;
  hi: number;
  logY: boolean;
  ticks: number[];
}

function yAxis(series: ChartSeries[], logY: boolean, range?: readonly [number, number]): YAxis {
  let lo = Infinity, hi = -Infinity;
  for (const s of series) {
    for (let i = 0; i < s.values.length; i++) {
      const v = s.values[i];
      if (!drawable(v, logY)) continue;
      const t = logY ? Math.log10(v) : v;
      if (t < lo) lo = t;
      if (t > hi) hi = t;
    }
  }
  if (lo === Infinity) [lo, hi] = logY ? [-1, 0] : [0, 1];
  if (logY) {
    // Ends at decades around the data, or, over two decades or less, at 1, 2 or 5 times a power
    // of ten so that a short range fills the panel; ticks at the ends and the decades.
    if (hi - lo > 2) {
      [lo, hi] = [Math.floor(lo), Math.ceil(hi)];
    } else {
      lo = logStep(lo, "down");
      hi = logStep(Math.max(hi, lo + 1e-6), "up");
      if (hi <= lo) hi = logStep(lo + 0.01, "up");
    }
    const ticks = [lo];
    for (let k = Math.floor(lo) + 1; k < hi - 1e-9; k++) if (k > lo + 1e-9) ticks.push(k);
    ticks.push(hi);
    return { lo, hi, logY, ticks };
  }
  if (range !== undefined) [lo, hi] = [Math.min(range[0], lo), Math.max(range[1], hi)];
  if (lo > 0) lo = 0;
  if (hi === lo) hi = lo + 1;
  // Round the top up to a tick, so the highest value sits under a labelled line.
  const ticks = linearTicks(lo, hi);
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : 1;
  if (ticks[ticks.length - 1] < hi - 1e-12) ticks.push(Number((ticks.at(-1)! + step).toFixed(12)));
  hi = Math.max(hi, ticks[ticks.length - 1]);
  return { lo, hi, logY, ticks: ticks.filter((t) => t >= lo - 1e-12 && t <= hi + 1e-12) };
}

/** The legend as rows of swatch + name that wrap at `maxWidth`; returns the SVG and row count. */
function legendRows(
  series: ChartSeries[],
  kind: "line" | "bar",
  x0: number,
  y: number,
  maxWidth: number,
): { svg: string[]; rows: number } {
  const svg: string[] = [];
  let x = x0, row = 0;
  series.forEach((s, si) => {
    const color = colorOf(s, si);
    const w = 26 + textWidth(s.name) + 18;
    if (x > x0 && x + w > x0 + maxWidth) {
      x = x0;
      row++;
    }
    const ly = y + row * LEGEND_ROW;
    svg.push(
      kind === "line"
        ? `<line x1="${x}" y1="${ly}" x2="${x + 20}" y2="${ly}" stroke="${color}" ` +
          `stroke-width="3"/>`
        : `<rect x="${x + 4}" y="${ly - 6}" width="12" height="12" fill="${color}"/>`,
      `<text x="${x + 26}" y="${ly}" dy="0.35em">${esc(s.name)}</text>`,
    );
    x += w;
  });
  return { svg, rows: series.length === 0 ? 0 : row + 1 };
}

function colorOf(s: ChartSeries, index: number): string {
  return s.color ?? PALETTE[index % PALETTE.length];
}

/** Checks that every series has `n` values. */
function checkSeries(series: ChartSeries[], n: number, where: string): void {
  if (series.length === 0) {
    throw new RangeError(`${where}.series must hold at least one series, got 0`);
  }
  series.forEach((s, i) => {
    if (s.values.length !== n) {
      throw new RangeError(
        `${where}.series[${i}].values must have ${n} values like ${
          i === 0 ? "the categories" : "series[0]"
        }, got ${s.values.length}`,
      );
    }
  });
}

/** Vertical layout shared by both kinds of panel. */
interface Frame {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  sy: (t: number) => number;
}

/**
 * Title, legend and band-name rows, the shaded bands, the y axis with grid lines and its caption.
 * `bandX(i)` gives the x of the left edge of x position `i` (and `bandX(n)` the right end).
 */
function frame(
  panel: { title: string; yLabel: string; bands?: ChartBand[]; series: ChartSeries[] },
  kind: "line" | "bar",
  axis: YAxis,
  top: number,
  bottom: number,
  width: number,
  bandX: (i: number) => number,
  out: string[],
): Frame {
  const x0 = LEFT, x1 = width - RIGHT;
  out.push(
    `<text x="${x0}" y="${top + 18}" font-size="14" font-weight="bold">${esc(panel.title)}</text>`,
  );
  const legend = legendRows(panel.series, kind, x0, top + TITLE_ROW + 8, x1 - x0);
  out.push(...legend.svg);
  const bands = panel.bands ?? [];
  const y0 = top + TITLE_ROW + legend.rows * LEGEND_ROW + (bands.length > 0 ? BAND_ROW : 0) + 6;
  const y1 = bottom;
  const sy = (t: number): number => y1 - ((t - axis.lo) / (axis.hi - axis.lo)) * (y1 - y0);

  bands.forEach((b, i) => {
    const bx0 = bandX(Math.max(0, b.from)), bx1 = bandX(Math.max(b.to, b.from + 1));
    const w = Math.max(1, bx1 - bx0);
    out.push(
      `<rect class="band" x="${bx0.toFixed(1)}" y="${y0}" width="${w.toFixed(1)}" height="${
        y1 - y0
      }" fill="${b.fill ?? BAND_FILL[i % 2]}"/>`,
      `<text x="${((bx0 + bx1) / 2).toFixed(1)}" y="${y0 - 8}" text-anchor="middle" fill="#444">${
        esc(b.label)
      }</text>`,
    );
  });

  for (const t of axis.ticks) {
    const y = sy(t).toFixed(1);
    out.push(
      `<line x1="${x0}" y1="${y}" x2="${x1}" y2="${y}" stroke="#bbbbbb" stroke-width="0.5"/>`,
      `<line x1="${x0 - 4}" y1="${y}" x2="${x0}" y2="${y}" stroke="black"/>`,
      `<text x="${x0 - 7}" y="${y}" text-anchor="end" dy="0.35em">${
        axis.logY ? tick(10 ** t) : tick(t)
      }</text>`,
    );
  }
  out.push(
    `<line x1="${x0}" y1="${y1}" x2="${x1}" y2="${y1}" stroke="black"/>`,
    `<line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}" stroke="black"/>`,
    `<text transform="translate(18 ${((y0 + y1) / 2).toFixed(1)}) rotate(-90)" ` +
      `text-anchor="middle">${esc(panel.yLabel)}</text>`,
  );
  return { x0, x1, y0, y1, sy };
}

function svgDocument(width: number, height: number, panels: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif" ` +
    `font-size="${FONT}">\n<rect width="100%" height="100%" fill="white"/>\n` +
    `${panels.join("\n")}\n</svg>\n`;
}

/**
 * Renders line-chart panels as one SVG document: one polyline per unbroken run of each series
 * (a lone point is a dot), x ticks at round category indices.
 *
 * @param panels The panels, drawn top to bottom.
 * @param options `width` and per-panel `height` in pixels (default 900 × 340).
 * @returns The SVG text.
 * @throws {RangeError} When there is no panel, a panel has no series, or series lengths differ.
 *
 * @example
 * ```ts
 * import { lineChartSvg } from "@eql/eql/plot";
 * const svg = lineChartSvg([{
 *   title: "Mean gradient norm",
 *   xLabel: "category (sorted by frequency)",
 *   yLabel: "L2 norm",
 *   logY: true,
 *   series: [{ name: "positive", values: [1e-3, 1e-2, 1e-1] }],
 * }]);
 * svg.startsWith("<svg"); // true
 * ```
 */
export function lineChartSvg(
  panels: ChartPanel[],
  options: { width?: number; height?: number } = {},
): string {
  if (panels.length === 0) throw new RangeError("panels must hold at least one panel, got 0");
  const width = options.width ?? 900, height = options.height ?? 340;
  const parts = panels.map((panel, p) => renderLinePanel(panel, p, width, height));
  return svgDocument(width, height * panels.length, parts);
}

function renderLinePanel(panel: ChartPanel, index: number, width: number, height: number): string {
  const n = panel.series[0]?.values.length ?? 0;
  checkSeries(panel.series, n, `panels[${index}]`);
  const logY = panel.logY ?? false;
  const axis = yAxis(panel.series, logY);
  const top = index * height, bottom = (index + 1) * height - 48;
  const x0 = LEFT, x1 = width - RIGHT;
  const sx = (i: number): number => x0 + (n <= 1 ? 0 : (i / (n - 1)) * (x1 - x0));
  // A band covers its points and half the gap to the neighbours, within the plotting area.
  const bandX = (i: number): number => Math.min(x1, Math.max(x0, sx(i - 0.5)));
  const out: string[] = [];
  const f = frame(panel, "line", axis, top, bottom, width, bandX, out);

  for (const t of linearTicks(0, Math.max(0, n - 1)).filter((t) => Number.isInteger(t))) {
    const x = sx(t).toFixed(1);
    out.push(
      `<line x1="${x}" y1="${f.y1}" x2="${x}" y2="${f.y1 + 4}" stroke="black"/>`,
      `<text x="${x}" y="${f.y1 + 17}" text-anchor="middle">${t}</text>`,
    );
  }
  out.push(
    `<text x="${(x0 + x1) / 2}" y="${f.y1 + 36}" text-anchor="middle">${esc(panel.xLabel)}</text>`,
  );

  const smooth = panel.smooth ?? 1;
  if (!Number.isInteger(smooth) || smooth < 1) {
    throw new RangeError(`panels[${index}].smooth must be a positive integer, got ${smooth}`);
  }
  // Axis units of every point (log10 on a log axis), NaN where nothing is drawn.
  const units = panel.series.map((s) =>
    Array.from({ length: n }, (_, i) => {
      const v = s.values[i];
      return drawable(v, logY) ? (logY ? Math.log10(v) : v) : NaN;
    })
  );
  if (smooth > 1) {
    units.forEach((t, si) => {
      const color = colorOf(panel.series[si], si);
      out.push(...polylines(t, sx, f.sy, color, "0.8", "series-raw", 0.3));
    });
  }
  // The first series is drawn widest, the later ones narrower on top of it, so that where two
  // curves coincide both colours still show.
  units.forEach((t, si) => {
    const color = colorOf(panel.series[si], si);
    const width = Math.max(0.8, 2.2 - 0.6 * si).toFixed(1);
    out.push(...polylines(smooth > 1 ? movingAverage(t, smooth) : t, sx, f.sy, color, width));
  });
  return `<g>\n${out.join("\n")}\n</g>`;
}

/** Centred moving average over `window` points, skipping NaN; NaN where the window is empty. */
function movingAverage(t: number[], window: number): number[] {
  const half = Math.floor(window / 2);
  return t.map((_, i) => {
    let sum = 0, count = 0;
    for (let k = Math.max(0, i - half); k <= Math.min(t.length - 1, i + half); k++) {
      if (!Number.isNaN(t[k])) {
        sum += t[k];
        count++;
      }
    }
    return count === 0 ? NaN : sum / count;
  });
}

/** One polyline per unbroken run of points (a lone point is a dot). */
function polylines(
  t: number[],
  sx: (i: number) => number,
  sy: (t: number) => number,
  color: string,
  width: string,
  cls = "series",
  opacity = 1,
): string[] {
  const out: string[] = [];
  const fade = opacity < 1 ? ` stroke-opacity="${opacity}"` : "";
  let run: string[] = [];
  const flush = (): void => {
    if (run.length === 1) {
      const [x, y] = run[0].split(",");
      out.push(`<circle cx="${x}" cy="${y}" r="2" fill="${color}"${fade}/>`);
    } else if (run.length > 1) {
      out.push(
        `<polyline class="${cls}" fill="none" stroke="${color}" stroke-width="${width}"${fade} ` +
          `stroke-linejoin="round" points="${run.join(" ")}"/>`,
      );
    }
    run = [];
  };
  t.forEach((v, i) => {
    if (Number.isNaN(v)) flush();
    else run.push(`${sx(i).toFixed(1)},${sy(v).toFixed(1)}`);
  });
  flush();
  return out;
}

/** Horizontal room a slot needs so that its bars stay readable. */
function slotWidth(series: number): number {
  return Math.max(14, 6 * series + 4);
}

/** Layout of the category labels under a bar panel. */
interface LabelLayout {
  rotate: boolean;
  every: number;
  /** Pixels the labels take under the axis. */
  depth: number;
}

function labelLayout(panel: BarPanel, slot: number): LabelLayout {
  const longest = Math.max(0, ...panel.categories.map((c) => textWidth(c, 11)));
  const noteLongest = Math.max(0, ...(panel.notes ?? []).map((c) => textWidth(c, 10)));
  const notes = panel.notes !== undefined;
  if (Math.max(longest, noteLongest) <= slot - 4) {
    return { rotate: false, every: 1, depth: 16 + (notes ? 13 : 0) };
  }
  // Vertical labels: one every `every` slots so that neighbours do not touch.
  const every = Math.max(1, Math.ceil(13 / slot));
  const text = notes
    ? Math.max(...panel.categories.map((c, i) => textWidth(`${c} (${panel.notes![i] ?? ""})`, 11)))
    : longest;
  return { rotate: true, every, depth: Math.min(160, 0.9 * text) + 12 };
}

/**
 * Renders grouped bar-chart panels as one SVG document: for each category a slot with one bar per
 * series side by side (so equal values never hide each other; a zero is a short stub on the axis),
 * the category's name and note under the slot (turned vertical when they do not fit), bands shaded
 * behind the bars.
 *
 * @param panels The panels, drawn top to bottom.
 * @param options `width` (default: 900, or wider so each slot gets at least 14 px) and per-panel
 * `height` (default 340, plus the room the category labels take).
 * @returns The SVG text.
 * @throws {RangeError} When there is no panel, a panel has no series or no category, the notes do
 * not match the categories, or a series' length differs from the number of categories.
 *
 * @example
 * ```ts
 * import { barChartSvg } from "@eql/eql/plot";
 * const svg = barChartSvg([{
 *   title: "Accuracy per class",
 *   xLabel: "class",
 *   yLabel: "top-1 accuracy (%)",
 *   categories: ["cat", "dog", "eel"],
 *   notes: ["n=500", "n=50", "n=5"],
 *   yRange: [0, 100],
 *   series: [{ name: "softmax", values: [90, 40, 0] }, { name: "SEQL", values: [88, 52, 0] }],
 *   bands: [{ from: 0, to: 1, label: "many" }, { from: 1, to: 3, label: "few" }],
 * }]);
 * svg.includes(">dog<"); // true
 * ```
 */
export function barChartSvg(panels: BarPanel[], options: ChartSize = {}): string {
  if (panels.length === 0) throw new RangeError("panels must hold at least one panel, got 0");
  panels.forEach((panel, p) => {
    const n = panel.categories.length;
    if (n === 0) throw new RangeError(`panels[${p}].categories must not be empty, got 0`);
    if (panel.notes !== undefined && panel.notes.length !== n) {
      throw new RangeError(
        `panels[${p}].notes must have ${n} entries like the categories, got ${panel.notes.length}`,
      );
    }
    checkSeries(panel.series, n, `panels[${p}]`);
  });
  const need = Math.max(
    ...panels.map((q) => LEFT + RIGHT + q.categories.length * slotWidth(q.series.length)),
  );
  const width = options.width ?? Math.max(900, Math.ceil(need));
  const slots = panels.map((q) => (width - LEFT - RIGHT) / q.categories.length);
  const layouts = panels.map((q, p) => labelLayout(q, slots[p]));
  const heights = layouts.map((l) => (options.height ?? 340) + l.depth);
  const parts: string[] = [];
  let top = 0;
  panels.forEach((panel, p) => {
    parts.push(renderBarPanel(panel, top, heights[p], width, layouts[p]));
    top += heights[p];
  });
  return svgDocument(width, top, parts);
}

function renderBarPanel(
  panel: BarPanel,
  top: number,
  height: number,
  width: number,
  layout: LabelLayout,
): string {
  const n = panel.categories.length, m = panel.series.length;
  const logY = panel.logY ?? false;
  const axis = yAxis(panel.series, logY, logY ? undefined : panel.yRange);
  const bottom = top + height - 30 - layout.depth;
  const x0 = LEFT, x1 = width - RIGHT;
  const slot = (x1 - x0) / n;
  const slotX = (i: number): number => x0 + i * slot;
  const out: string[] = [];
  const f = frame(panel, "bar", axis, top, bottom, width, slotX, out);
  const base = f.sy(axis.lo < 0 && !logY ? 0 : axis.lo);

  // Bars: 80 % of the slot, split between the series, a hair of space between neighbours.
  const group = 0.8 * slot, barW = group / m, gap = Math.min(1, barW * 0.1);
  panel.series.forEach((s, si) => {
    const color = colorOf(s, si);
    for (let i = 0; i < n; i++) {
      const v = s.values[i];
      if (!drawable(v, logY)) continue;
      const x = slotX(i) + (slot - group) / 2 + si * barW + gap / 2;
      const y = f.sy(logY ? Math.log10(v) : v);
      // A zero (or a value too small to see) is drawn as a 2-px stub, so every bar is visible.
      const h = y <= base ? Math.max(2, base - y) : y - base;
      const yTop = y <= base ? base - h : base;
      out.push(
        `<rect class="bar" data-series="${si}" x="${x.toFixed(1)}" y="${yTop.toFixed(1)}" ` +
          `width="${(barW - gap).toFixed(1)}" height="${h.toFixed(1)}" fill="${color}"/>`,
      );
      if (panel.valueLabel !== undefined) {
        out.push(
          `<text x="${(x + (barW - gap) / 2).toFixed(1)}" y="${
            (Math.min(y, base) - 4).toFixed(1)
          }" text-anchor="middle" font-size="10">${esc(panel.valueLabel(v))}</text>`,
        );
      }
    }
  });

  // Category names (and notes) under their slots.
  for (let i = 0; i < n; i++) {
    const cx = slotX(i) + slot / 2;
    if (i % layout.every !== 0) continue;
    out.push(`<line x1="${cx}" y1="${f.y1}" x2="${cx}" y2="${f.y1 + 3}" stroke="black"/>`);
    const note = panel.notes?.[i];
    if (layout.rotate) {
      const text = note === undefined ? panel.categories[i] : `${panel.categories[i]} (${note})`;
      out.push(
        `<text class="category" transform="translate(${cx.toFixed(1)} ${f.y1 + 7}) ` +
          `rotate(-90)" text-anchor="end" dy="0.35em" font-size="11">${esc(text)}</text>`,
      );
    } else {
      out.push(
        `<text class="category" x="${cx.toFixed(1)}" y="${
          f.y1 + 15
        }" text-anchor="middle" font-size="11">${esc(panel.categories[i])}</text>`,
      );
      if (note !== undefined) {
        out.push(
          `<text x="${cx.toFixed(1)}" y="${
            f.y1 + 28
          }" text-anchor="middle" font-size="10" fill="#555">${esc(note)}</text>`,
        );
      }
    }
  }
  out.push(
    `<text x="${(x0 + x1) / 2}" y="${f.y1 + layout.depth + 20}" text-anchor="middle">${
      esc(panel.xLabel)
    }</text>`,
  );
  return `<g>\n${out.join("\n")}\n</g>`;
}
