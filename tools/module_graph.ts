/**
 * Counts the modules and bytes that importing an entry point loads: the modules reachable through
 * static imports (what `import "…"` evaluates) and, apart, everything reachable when dynamic
 * imports are followed too. Reads the graph from `deno info --json`.
 *
 * Usage: `deno run -A tools/module_graph.ts [entry.ts …]` (default: every entry of deno.json's
 * `exports`).
 *
 * @module
 */

import { moduleGraph } from "../test/_module_graph.ts";

const root = new URL("../", import.meta.url);
let entries = Deno.args;
if (entries.length === 0) {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  entries = Object.entries(config.exports as Record<string, string>).map(([name, path]) =>
    `${name}=${path}`
  );
}
for (const entry of entries) {
  const [name, path] = entry.includes("=") ? entry.split("=") : [entry, entry];
  const g = await moduleGraph(new URL(path, root));
  const kb = (n: number): string => `${(n / 1024).toFixed(0)} KiB`;
  const ptx = g.staticModules.some((m) => m.endsWith("/ffi/kernels/ptx.ts")) ? ", PTX" : "";
  console.log(
    `${name.padEnd(14)} ${path.padEnd(24)} static: ${g.staticModules.length} modules, ` +
      `${kb(g.staticBytes)}${ptx}; with dynamic imports: ${g.allModules.length} modules, ` +
      `${kb(g.allBytes)}`,
  );
}
