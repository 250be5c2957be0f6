/**
 * Rewrites the imports of JSDoc examples from relative paths (`./tensor.ts`) to the package's
 * public entry points (`@eql/eql`, `@eql/eql/data`, …), so that an example works when copied
 * into a user's project. A name is moved only when an entry point exports the very declaration the
 * relative import names (matched by `deno doc`'s declaration site); examples of internal code keep
 * their relative imports. `@eql/eql` is preferred, then the other entry points in the order of
 * deno.json's `exports`.
 *
 * Usage: `deno run -A tools/public_doc_imports.ts [--check] [file.ts …]` (default: every `.ts`
 * file under `src/` and `ffi/`). `--check` lists what would change and exits 1 if anything would.
 *
 * @module
 */

interface DocSymbol {
  name: string;
  declarations: { location: { filename: string } }[];
}

const root = new URL("../", import.meta.url);
const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root))) as {
  name: string;
  exports: Record<string, string>;
};

/** `deno doc --json` of one module: its exported names and where each is declared. */
async function declarations(href: string): Promise<Map<string, string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", href],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`deno doc ${href}: ${new TextDecoder().decode(out.stderr)}`);
  const doc = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    nodes: Record<string, { symbols: DocSymbol[] }>;
  };
  const map = new Map<string, string>();
  for (const node of Object.values(doc.nodes)) {
    for (const s of node.symbols) map.set(s.name, s.declarations[0]?.location.filename ?? "");
  }
  return map;
}

// Declaration site + name → public specifier, the first entry point winning.
const publicName = new Map<string, string>();
for (const [sub, path] of Object.entries(config.exports)) {
  const specifier = sub === "." ? config.name : `${config.name}/${sub.slice(2)}`;
  for (const [name, file] of await declarations(new URL(path, root).href)) {
    const key = `${file}#${name}`;
    if (!publicName.has(key)) publicName.set(key, specifier);
  }
}

const cache = new Map<string, Map<string, string>>();
async function declarationsOf(href: string): Promise<Map<string, string>> {
  let d = cache.get(href);
  if (!d) cache.set(href, d = await declarations(href));
  return d;
}

async function* walk(dir: URL): AsyncGenerator<URL> {
  for await (const e of Deno.readDir(dir)) {
    const url = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    if (e.isDirectory) yield* walk(url);
    else if (e.name.endsWith(".ts")) yield url;
  }
}

const check = Deno.args.includes("--check");
const named = Deno.args.filter((a) => a !== "--check");
const files: URL[] = [];
if (named.length > 0) files.push(...named.map((f) => new URL(f, `file://${Deno.cwd()}/`)));
else {for (const dir of ["src/", "ffi/"]) {
    for await (const f of walk(new URL(dir, root))) files.push(f);
  }}

const IMPORT = /^( \* )import \{ ([^}]*) \} from "(\.{1,2}\/[^"]+)";$/;
let changed = 0;
for (const file of files.sort((a, b) => a.href.localeCompare(b.href))) {
  const lines = (await Deno.readTextFile(file)).split("\n");
  let touched = false;
  for (let i = 0; i < lines.length; i++) {
    const m = IMPORT.exec(lines[i]);
    if (!m) continue;
    const [, lead, list, relative] = m;
    const target = new URL(relative, file).href;
    const decl = await declarationsOf(target);
    const groups = new Map<string, string[]>();
    for (const item of list.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
      const name = item.replace(/^type /, "").split(" as ")[0];
      const home = publicName.get(`${decl.get(name)}#${name}`) ?? relative;
      if (!groups.has(home)) groups.set(home, []);
      groups.get(home)!.push(item);
    }
    if (groups.size === 1 && groups.has(relative)) continue;
    const order = [
      ...Object.keys(config.exports).map((sub) =>
        sub === "." ? config.name : `${config.name}/${sub.slice(2)}`
      ),
      relative,
    ];
    const replacement = order.filter((s) => groups.has(s)).map((s) =>
      `${lead}import { ${groups.get(s)!.join(", ")} } from "${s}";`
    );
    if (check) console.log(`${file.pathname}:${i + 1}: ${lines[i].trim()}`);
    lines.splice(i, 1, ...replacement);
    i += replacement.length - 1;
    touched = true;
    changed++;
  }
  if (touched && !check) await Deno.writeTextFile(file, lines.join("\n"));
}
console.log(
  `${changed} example import${changed === 1 ? "" : "s"} ${check ? "to rewrite" : "rewritten"}`,
);
if (check && changed > 0) Deno.exit(1);
