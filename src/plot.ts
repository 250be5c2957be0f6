/**
 * Minimal SVG line charts for per-category curves: one or more panels stacked vertically, each
 * with its series drawn over the category index (categories sorted by frequency), a linear or
 * logarithmic y axis, shaded bands marking the rare / common / frequent groups and a legend.
 * Plain SVG 1.1 text, readable by any browser.
 *
 * @module
 */

/** One curve of a panel. */
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
  /** Text written at the top of the band. */
  label: string;
}

/** One panel of a figure. */
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
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
const BAND_FILL = ["#f3f3f3", "#e6e6e6"];

/** Escapes text for an SVG text node or attribute. */
function esc(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
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

/**
 * Renders panels as one SVG document.
 *
 * @param panels The panels, drawn top to bottom.
 * @param options `width` and per-panel `height` in pixels (default 900 × 320).
 * @returns The SVG text.
 * @throws {RangeError} When there is no panel, a panel has no series, or series lengths differ.
 *
 * @example
 * ```ts
 * import { lineChartSvg } from "./plot.ts";
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
  const width = options.width ?? 900, height = options.height ?? 320;
  const parts: string[] = [];
  panels.forEach((panel, p) => parts.push(renderPanel(panel, p, width, height)));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${
    height * panels.length
  }" viewBox="0 0 ${width} ${height * panels.length}" font-family="sans-serif" font-size="12">\n` +
    `<rect width="100%" height="100%" fill="white"/>\n${parts.join("\n")}\n</svg>\n`;
}

function renderPanel(panel: ChartPanel, index: number, width: number, height: number): string {
  if (panel.series.length === 0) {
    throw new RangeError(`panels[${index}].series must hold at least one series, got 0`);
  }
  const n = panel.series[0].values.length;
  panel.series.forEach((s, i) => {
    if (s.values.length !== n) {
      throw new RangeError(
        `panels[${index}].series[${i}].values must have ${n} values like series[0], got ${s.values.length}`,
      );
    }
  });
  const logY = panel.logY ?? false;
  const left = 80, right = 20, top = 30, bottom = 45;
  const x0 = left,
    x1 = width - right,
    y0 = index * height + top,
    y1 = (index + 1) * height - bottom;

  // y range over the drawable values.
  let lo = Infinity, hi = -Infinity;
  for (const s of panel.series) {
    for (let i = 0; i < n; i++) {
      const v = s.values[i];
      if (!Number.isFinite(v) || (logY && v <= 0)) continue;
      const t = logY ? Math.log10(v) : v;
      if (t < lo) lo = t;
      if (t > hi) hi = t;
    }
  }
  if (lo === Infinity) [lo, hi] = logY ? [-1, 0] : [0, 1];
  if (logY) {
    lo = Math.floor(lo);
    hi = Math.max(Math.ceil(hi), lo + 1);
  } else {
    if (lo > 0) lo = 0;
    if (hi === lo) hi = lo + 1;
  }
  const sx = (i: number): number => x0 + (n <= 1 ? 0 : (i / (n - 1)) * (x1 - x0));
  const sy = (t: number): number => y1 - ((t - lo) / (hi - lo)) * (y1 - y0);
  const out: string[] = [];

  (panel.bands ?? []).forEach((b, i) => {
    const bx0 = sx(Math.max(0, b.from)), bx1 = sx(Math.min(n - 1, Math.max(b.to - 1, b.from)));
    out.push(
      `<rect x="${bx0.toFixed(1)}" y="${y0}" width="${Math.max(1, bx1 - bx0).toFixed(1)}" height="${
        y1 - y0
      }" fill="${BAND_FILL[i % 2]}"/>`,
      `<text x="${((bx0 + bx1) / 2).toFixed(1)}" y="${y0 + 14}" text-anchor="middle" fill="#555">${
        esc(b.label)
      }</text>`,
    );
  });

  // Axes and ticks.
  out.push(
    `<line x1="${x0}" y1="${y1}" x2="${x1}" y2="${y1}" stroke="black"/>`,
    `<line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}" stroke="black"/>`,
  );
  const yTicks = logY
    ? Array.from({ length: hi - lo + 1 }, (_, i) => lo + i)
    : linearTicks(lo, hi).filter((t) => t >= lo - 1e-12 && t <= hi + 1e-12);
  for (const t of yTicks) {
    const y = sy(t).toFixed(1);
    out.push(
      `<line x1="${x0 - 4}" y1="${y}" x2="${x0}" y2="${y}" stroke="black"/>`,
      `<text x="${x0 - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${
        logY ? `1e${t}` : tick(t)
      }</text>`,
    );
  }
  for (const t of linearTicks(0, Math.max(0, n - 1)).filter((t) => Number.isInteger(t))) {
    const x = sx(t).toFixed(1);
    out.push(
      `<line x1="${x}" y1="${y1}" x2="${x}" y2="${y1 + 4}" stroke="black"/>`,
      `<text x="${x}" y="${y1 + 16}" text-anchor="middle">${t}</text>`,
    );
  }
  out.push(
    `<text x="${(x0 + x1) / 2}" y="${index * height + 18}" text-anchor="middle" font-size="14">${
      esc(panel.title)
    }</text>`,
    `<text x="${(x0 + x1) / 2}" y="${y1 + 34}" text-anchor="middle">${esc(panel.xLabel)}</text>`,
    `<text transform="translate(16 ${(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">${
      esc(panel.yLabel)
    }</text>`,
  );

  // Series: polylines broken at gaps. The legend goes last, on a white box, so that it stays
  // readable over bands and curves.
  const legend: string[] = [
    `<rect x="${x1 - 156}" y="${y0 + 20}" width="150" height="${
      panel.series.length * 16 + 4
    }" fill="white" fill-opacity="0.85"/>`,
  ];
  panel.series.forEach((s, si) => {
    const color = s.color ?? PALETTE[si % PALETTE.length];
    let run: string[] = [];
    const flush = (): void => {
      if (run.length === 1) {
        const [x, y] = run[0].split(",");
        out.push(`<circle cx="${x}" cy="${y}" r="1.5" fill="${color}"/>`);
      } else if (run.length > 1) {
        out.push(
          `<polyline fill="none" stroke="${color}" stroke-width="1" points="${run.join(" ")}"/>`,
        );
      }
      run = [];
    };
    for (let i = 0; i < n; i++) {
      const v = s.values[i];
      if (!Number.isFinite(v) || (logY && v <= 0)) {
        flush();
        continue;
      }
      run.push(`${sx(i).toFixed(1)},${sy(logY ? Math.log10(v) : v).toFixed(1)}`);
    }
    flush();
    const ly = y0 + 30 + si * 16;
    legend.push(
      `<line x1="${x1 - 150}" y1="${ly}" x2="${
        x1 - 130
      }" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${x1 - 125}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`,
    );
  });
  return `<g>\n${[...out, ...legend].join("\n")}\n</g>`;
}
