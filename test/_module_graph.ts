// The module graph of an entry point as `deno info --json` reports it, split into what static
// imports load and what only dynamic imports reach.

/** Modules and their total size, by reachability. */
export interface ModuleGraph {
  /** Specifiers reachable through static code imports (loaded on import; `node:` built-ins left out). */
  staticModules: string[];
  /** Total source size of `staticModules`, in bytes. */
  staticBytes: number;
  /** Specifiers reachable when dynamic imports are followed too. */
  allModules: string[];
  /** Total source size of `allModules`, in bytes. */
  allBytes: number;
}

interface InfoDependency {
  code?: { specifier: string };
  isDynamic?: boolean;
}

interface InfoModule {
  specifier: string;
  size?: number;
  dependencies?: InfoDependency[];
}

/**
 * Runs `deno info --json` on `entry` and walks its graph.
 *
 * @param entry The entry module.
 * @returns The static and the full closure with their sizes.
 */
export async function moduleGraph(entry: URL): Promise<ModuleGraph> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry.href],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno info ${entry.href} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: InfoModule[];
  };
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  const walk = (followDynamic: boolean): [string[], number] => {
    const seen = new Set<string>();
    const stack = [...info.roots];
    let bytes = 0;
    while (stack.length > 0) {
      const s = stack.pop()!;
      if (seen.has(s)) continue;
      seen.add(s);
      const m = bySpecifier.get(s);
      bytes += m?.size ?? 0;
      for (const d of m?.dependencies ?? []) {
        if (d.code && (followDynamic || !d.isDynamic)) stack.push(d.code.specifier);
      }
    }
    return [[...seen].filter((s) => !s.startsWith("node:")).sort(), bytes];
  };
  const [staticModules, staticBytes] = walk(false);
  const [allModules, allBytes] = walk(true);
  return { staticModules, staticBytes, allModules, allBytes };
}
