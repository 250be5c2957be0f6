/**
 * Where the NVIDIA libraries live: the CUDA driver (`libcuda.so.1`), cuBLAS 13 (`libcublas.so.13`,
 * which needs `libcublasLt.so.13` beside it), cuDNN 9 (`libcudnn.so.9`) and NVRTC
 * (`libnvrtc.so.13`, which cuDNN loads for its run-time compiled engines).
 *
 * Search order, first hit wins:
 *
 * 1. The override variable, alone when set: `EQL_CUDA_DRIVER_PATH`, `EQL_CUBLAS_PATH`,
 *    `EQL_CUDNN_PATH`, `EQL_NVRTC_PATH` (the full path of the `.so` file).
 * 2. The bare library name, resolved by the system linker (`LD_LIBRARY_PATH`, the `ldconfig`
 *    cache, the default folders).
 * 3. For the driver: the folders distributions and containers install it to
 *    (`/usr/lib/x86_64-linux-gnu`, `/usr/lib64`, `/usr/local/nvidia/lib64`, `/usr/lib/wsl/lib`).
 *    Never the toolkit's `lib64/stubs/libcuda.so`, which only links and reports no device.
 * 4. For the others: the CUDA toolkit of `CUDA_HOME`, `CUDA_PATH` and `/usr/local/cuda`, each in
 *    `lib64/`, `lib/` and `targets/x86_64-linux/lib/`.
 * 5. For the others: the pip NVIDIA wheels (`nvidia/cu13/lib` for cuBLAS and NVRTC,
 *    `nvidia/cudnn/lib` for cuDNN) under the site-packages of `NVIDIA_SITE` (a site-packages folder),
 *    `VIRTUAL_ENV`, `CONDA_PREFIX`, and of the `python3` on `PATH` (asked once, with a timeout, only
 *    when nothing earlier loaded).
 *
 * @module
 */

import { envVar, LibraryNotFoundError, openLibrary } from "./discovery.ts";
import { missingPermissions } from "./permissions.ts";

/** The libraries this module knows how to find. */
export type NvidiaLibraryId = "driver" | "cublas" | "cudnn" | "nvrtc";

/** What is searched for one library (a library without `pipDir` is searched like the driver). */
export interface NvidiaLibraryInfo {
  /** Human name used in messages. */
  readonly library: string;
  /** The file name (SONAME). */
  readonly file: string;
  /** The variable holding an explicit path. */
  readonly envVar: string;
  /** Folder under site-packages of the pip wheel that ships it (absent for the driver). */
  readonly pipDir?: string;
  /** Libraries opened from the same folder first, so the loader finds them by SONAME. */
  readonly companions: readonly string[];
}

/** The libraries, their file names, override variables and pip folders. */
export const NVIDIA_LIBRARIES: Readonly<Record<NvidiaLibraryId, NvidiaLibraryInfo>> = {
  driver: {
    library: "CUDA driver",
    file: "libcuda.so.1",
    envVar: "EQL_CUDA_DRIVER_PATH",
    companions: [],
  },
  cublas: {
    library: "cuBLAS 13",
    file: "libcublas.so.13",
    envVar: "EQL_CUBLAS_PATH",
    pipDir: "nvidia/cu13/lib",
    companions: ["libcublasLt.so.13"],
  },
  cudnn: {
    library: "cuDNN 9",
    file: "libcudnn.so.9",
    envVar: "EQL_CUDNN_PATH",
    pipDir: "nvidia/cudnn/lib",
    companions: [],
  },
  nvrtc: {
    library: "NVRTC 13",
    file: "libnvrtc.so.13",
    envVar: "EQL_NVRTC_PATH",
    pipDir: "nvidia/cu13/lib",
    companions: [],
  },
};

const DRIVER_FOLDERS = [
  "/usr/lib/x86_64-linux-gnu",
  "/usr/lib64",
  "/usr/local/nvidia/lib64",
  "/usr/lib/wsl/lib",
];
const TOOLKIT_SUBDIRS = ["lib64", "lib", "targets/x86_64-linux/lib"];

/** The outside world as discovery sees it; tests replace parts of it. */
export interface DiscoveryEnvironment {
  /** Reads an environment variable (undefined when unset or not permitted). */
  env(name: string): string | undefined;
  /** Lists the entries of a folder (empty when it cannot be read). */
  listDir(path: string): string[];
  /** The site-packages folders holding the `nvidia` package of the `python3` on PATH. */
  pythonSites(): string[];
}

function listDir(path: string): string[] {
  try {
    return [...Deno.readDirSync(path)].map((e) => e.name).sort();
  } catch {
    return [];
  }
}

const PROBE = "import nvidia, os\nfor p in nvidia.__path__: print(os.path.dirname(p))";
let pythonSitesCache: string[] | undefined;

/**
 * Asks the `python3` on PATH where its `nvidia` package lives (once per process; a failure, a
 * missing interpreter or a missing permission gives no folders). `timeout` bounds the wait where
 * coreutils has it.
 */
function askPython(): string[] {
  if (pythonSitesCache) return pythonSitesCache;
  const attempts: [string, string[]][] = [
    ["timeout", ["-k", "2", "15", "python3", "-c", PROBE]],
    ["python3", ["-c", PROBE]],
  ];
  let sites: string[] = [];
  for (const [cmd, args] of attempts) {
    try {
      const out = new Deno.Command(cmd, { args, stdout: "piped", stderr: "null", stdin: "null" })
        .outputSync();
      if (out.success) {
        sites = new TextDecoder().decode(out.stdout).split("\n").map((s) => s.trim())
          .filter((s) => s.length > 0);
      }
      break; // the command ran (successfully or not): the answer is final
    } catch {
      // NotFound (no `timeout` binary) or no --allow-run: try the next form
    }
  }
  pythonSitesCache = [...new Set(sites)];
  return pythonSitesCache;
}

/** The real environment: process variables, the file system and the `python3` on PATH. */
export const systemEnvironment: DiscoveryEnvironment = {
  env: envVar,
  listDir,
  pythonSites: askPython,
};

function join(...parts: string[]): string {
  return parts.join("/").replace(/\/+/g, "/");
}

function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** `prefix/lib/python3.X/site-packages` for every python3.X folder under a prefix. */
function prefixSites(prefix: string, env: DiscoveryEnvironment): string[] {
  const lib = join(prefix, "lib");
  return env.listDir(lib).filter((name) => /^python3\.\d+$/.test(name))
    .map((name) => join(lib, name, "site-packages"));
}

/** One place to look: the path to try and where it came from. */
export interface Candidate {
  /** A bare file name (system linker) or an absolute path. */
  path: string;
  /** Which rule produced it, e.g. "CUDA_HOME" or "python3 on PATH". */
  source: string;
}

/**
 * Every place to look for a library, in order, without the override variable.
 *
 * @param lib Which library (or a description of another one, searched the same way).
 * @param env The environment (the real one by default).
 * @param includePython Whether to ask the `python3` on PATH (slow: a process start).
 * @returns Candidates in search order, duplicates removed.
 *
 * @example
 * ```ts
 * import { nvidiaCandidates } from "./nvidia_paths.ts";
 * nvidiaCandidates("cublas", undefined, false)[0].path; // "libcublas.so.13"
 * ```
 */
export function nvidiaCandidates(
  lib: NvidiaLibraryId | NvidiaLibraryInfo,
  env: DiscoveryEnvironment = systemEnvironment,
  includePython = true,
): Candidate[] {
  const info = typeof lib === "string" ? NVIDIA_LIBRARIES[lib] : lib;
  const out: Candidate[] = [{ path: info.file, source: "system linker" }];
  if (info.pipDir === undefined) {
    for (const dir of DRIVER_FOLDERS) out.push({ path: join(dir, info.file), source: "driver" });
  } else {
    const roots: [string, string][] = [];
    for (const name of ["CUDA_HOME", "CUDA_PATH"]) {
      const v = env.env(name);
      if (v) roots.push([v, name]);
    }
    roots.push(["/usr/local/cuda", "default toolkit"]);
    for (const [root, source] of roots) {
      for (const sub of TOOLKIT_SUBDIRS) out.push({ path: join(root, sub, info.file), source });
    }
    const sites: [string, string][] = [];
    const nvidiaSite = env.env("NVIDIA_SITE");
    if (nvidiaSite) sites.push([nvidiaSite, "NVIDIA_SITE"]);
    for (const name of ["VIRTUAL_ENV", "CONDA_PREFIX"]) {
      const v = env.env(name);
      if (v) { for (const site of prefixSites(v, env)) sites.push([site, name]); }
    }
    if (includePython) {
      for (const site of env.pythonSites()) sites.push([site, "python3 on PATH"]);
    }
    for (const [site, source] of sites) {
      out.push({ path: join(site, info.pipDir ?? "", info.file), source });
    }
  }
  const seen = new Set<string>();
  return out.filter((c) => {
    if (seen.has(c.path)) return false;
    seen.add(c.path);
    return true;
  });
}

// Handles of companion libraries, kept open for the life of the process.
const companionHandles = new Map<string, Deno.DynamicLibrary<Record<string, never>>>();

function fileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Opens the companions that sit beside `path`, so that loading `path` finds them by SONAME. */
function openCompanions(info: NvidiaLibraryInfo, path: string): string[] {
  const notes: string[] = [];
  if (!path.includes("/")) return notes;
  for (const file of info.companions) {
    const full = join(dirname(path), file);
    if (companionHandles.has(full) || !fileExists(full)) continue;
    try {
      companionHandles.set(full, Deno.dlopen(full, {}));
    } catch (e) {
      notes.push(`${full} (needed beside it): ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return notes;
}

/** Drops the path and the repeated "Could not open library: " that the loader message starts with. */
function tidy(path: string, entry: string): string {
  const prefix = `${path}: `;
  let why = entry.startsWith(prefix) ? entry.slice(prefix.length) : entry;
  why = why.replace(/^(Could not open library: )+/, "");
  return why.startsWith(prefix) ? why.slice(prefix.length) : why;
}

/**
 * Opens an NVIDIA library: the override variable alone when set, otherwise every candidate of
 * {@linkcode nvidiaCandidates} in order (asking `python3` only when the others all fail).
 *
 * @param lib Which library (or a description of another one, searched the same way).
 * @param symbols The symbol table.
 * @param env The environment used to list candidates (the real one by default).
 * @returns The opened library.
 * @throws {LibraryNotFoundError} Listing every place looked and the variable to set.
 *
 * @example
 * ```ts ignore
 * import { openNvidiaLibrary } from "./nvidia_paths.ts";
 * const lib = openNvidiaLibrary("driver", { cuInit: { parameters: ["u32"], result: "i32" } });
 * lib.symbols.cuInit(0);
 * ```
 */
export function openNvidiaLibrary<S extends Deno.ForeignLibraryInterface>(
  lib: NvidiaLibraryId | NvidiaLibraryInfo,
  symbols: S,
  env: DiscoveryEnvironment = systemEnvironment,
): Deno.DynamicLibrary<S> {
  const info = typeof lib === "string" ? NVIDIA_LIBRARIES[lib] : lib;
  // Without --allow-ffi every candidate would be "not found": name the missing permission.
  const missing = missingPermissions([{ name: "ffi" }]);
  if (missing.length > 0) {
    throw new LibraryNotFoundError(info.library, info.envVar, [], undefined, missing);
  }
  const spec = { library: info.library, envVar: info.envVar, symbols };
  const override = env.env(info.envVar);
  if (override) {
    const notes = openCompanions(info, override);
    try {
      return openLibrary({ ...spec, candidates: [override] });
    } catch (e) {
      if (!(e instanceof LibraryNotFoundError)) throw e;
      throw new LibraryNotFoundError(info.library, info.envVar, [...e.tried, ...notes]);
    }
  }
  const tried: string[] = [];
  const attempted = new Set<string>();
  const attempt = (list: Candidate[]): Deno.DynamicLibrary<S> | undefined => {
    for (const c of list) {
      if (attempted.has(c.path)) continue;
      attempted.add(c.path);
      const notes = openCompanions(info, c.path);
      try {
        return openLibrary({ ...spec, candidates: [c.path] });
      } catch (e) {
        if (!(e instanceof LibraryNotFoundError)) throw e;
        tried.push(...e.tried.map((t) => `${c.path}: ${tidy(c.path, t)} [${c.source}]`), ...notes);
      }
    }
    return undefined;
  };
  const found = attempt(nvidiaCandidates(info, env, false)) ??
    (info.pipDir ? attempt(nvidiaCandidates(info, env, true)) : undefined);
  if (found) return found;
  if (info.pipDir) {
    const unset = ["NVIDIA_SITE", "VIRTUAL_ENV", "CONDA_PREFIX", "CUDA_HOME", "CUDA_PATH"]
      .filter((v) => !env.env(v));
    if (unset.length) tried.push(`(not set, so not searched: ${unset.join(", ")})`);
    if (env.pythonSites().length === 0) {
      tried.push(`(python3 on PATH: no "nvidia" package found, so no pip wheel folder)`);
    }
  }
  throw new LibraryNotFoundError(info.library, info.envVar, tried);
}
