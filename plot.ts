/**
 * Dependency-free SVG charts for the examples' figures: line charts (optionally log-scaled, with
 * shaded bands such as LVIS's rare/common/frequent ranges) and grouped bar charts with category
 * names under the bars.
 *
 * @example
 * ```ts
 * import { barChartSvg } from "@eql/eql/plot";
 * const svg = barChartSvg([{
 *   title: "Per-class accuracy",
 *   xLabel: "class",
 *   yLabel: "accuracy",
 *   categories: ["cat", "dog", "owl"],
 *   series: [{ name: "softmax", values: [0.9, 0.6, 0.1] }, { name: "SEQL", values: [0.85, 0.65, 0.3] }],
 * }]);
 * await Deno.writeTextFile("accuracy.svg", svg);
 * ```
 *
 * @module
 */

export {
  barChartSvg,
  type BarPanel,
  type ChartBand,
  type ChartPanel,
  type ChartSeries,
  type ChartSize,
  lineChartSvg,
} from "./src/plot.ts";
