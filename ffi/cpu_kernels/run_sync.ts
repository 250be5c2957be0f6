/**
 * Running a command to its end from synchronous code with a time limit (the compiler, whose
 * build is needed by a synchronous call): a worker starts and watches the command while the
 * calling thread blocks on a shared flag, waking once to show a notice when the run is slow.
 * Where no worker can be started, the command runs under coreutils' `timeout`.
 *
 * @module
 */

/**
 * Whether `cmd --version` runs.
 *
 * @param cmd The command.
 * @returns True when it started and exited with status 0.
 *
 * @example
 * ```ts
 * import { commandRuns } from "./run_sync.ts";
 * console.log(commandRuns("cc") ? "a C compiler is installed" : "no cc");
 * ```
 */
export function commandRuns(cmd: string): boolean {
  try {
    return new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** What one run of a command gave. */
export interface RunOutcome {
  /** Exit code; `null` when the command could not be started or was stopped. */
  code: number | null;
  /** Its standard output followed by its standard error. */
  output: string;
  /** Whether it was stopped for running past its time. */
  timedOut: boolean;
  /** Why it could not be started, when it could not. */
  spawnError?: string;
}

/** A notice shown once when a build has been running for a while. */
export interface SlowNotice {
  /** `performance.now()` from which on the notice is due. */
  at: number;
  /** Shows it. */
  show: () => void;
  /** Whether it was shown. */
  shown: boolean;
}

/** Bytes of the shared block: eight `int32` fields, then the output. */
const HEADER_BYTES = 32;
const OUTPUT_BYTES = 1 << 20;
/** Grace between SIGTERM and SIGKILL for a compiler that was stopped. */
const KILL_GRACE_MS = 5000;
/** How long the worker may take to start before the command is run without it. */
const WORKER_START_MS = 10_000;

/**
 * The worker that runs one command: it starts it (in its own process group on Unix, so that the
 * compiler's own children are stopped with it), stops it at the deadline and writes the outcome
 * into the shared block: [done, code, timedOut, spawnFailed, bytes, started], then the output.
 */
const RUNNER = `
self.onmessage = async (event) => {
  const { shared, cmd, args, cwd, timeoutMs, graceMs, group } = event.data;
  const state = new Int32Array(shared, 0, 8);
  Atomics.store(state, 5, 1);
  let text = "", code = -1, timedOut = 0, spawnFailed = 0;
  try {
    const child = new Deno.Command(cmd, {
      args, cwd, stdin: "null", stdout: "piped", stderr: "piped", detached: group,
    }).spawn();
    const signal = (name) => {
      try {
        if (group) Deno.kill(-child.pid, name);
        else child.kill(name);
      } catch {
        // already gone
      }
    };
    let hard;
    const soft = setTimeout(() => {
      timedOut = 1;
      signal("SIGTERM");
      hard = setTimeout(() => signal("SIGKILL"), graceMs);
    }, timeoutMs);
    const out = await child.output();
    clearTimeout(soft);
    clearTimeout(hard);
    const dec = new TextDecoder();
    text = dec.decode(out.stdout) + dec.decode(out.stderr);
    code = out.code;
  } catch (e) {
    spawnFailed = 1;
    text = e instanceof Error ? e.message : String(e);
  }
  const bytes = new TextEncoder().encode(text).subarray(0, shared.byteLength - ${HEADER_BYTES});
  new Uint8Array(shared, ${HEADER_BYTES}).set(bytes);
  state[1] = code;
  state[2] = timedOut;
  state[3] = spawnFailed;
  state[4] = bytes.length;
  Atomics.store(state, 0, 1);
  Atomics.notify(state, 0);
};
`;

/**
 * Runs a command to its end from synchronous code, stopping it after `timeoutMs`: a worker
 * starts and watches it while this thread blocks on a shared flag (waking once to show `slow`).
 * Where no worker can be started, {@linkcode runDirect} runs it.
 *
 * @param cmd The command.
 * @param args Its arguments.
 * @param cwd Its working folder.
 * @param timeoutMs How long it may run before it is stopped (SIGTERM, then SIGKILL).
 * @param slow A notice to show once when the run is still going at `slow.at`.
 * @returns The exit code and output, or whether it timed out or could not be started.
 *
 * @example
 * ```ts
 * import { runSync } from "./run_sync.ts";
 * const r = runSync("cc", ["--version"], ".", 10_000, undefined);
 * console.log(r.code === 0 ? r.output.split("\n")[0] : "no compiler");
 * ```
 */
export function runSync(
  cmd: string,
  args: string[],
  cwd: string,
  timeoutMs: number,
  slow: SlowNotice | undefined,
): RunOutcome {
  const shared = new SharedArrayBuffer(HEADER_BYTES + OUTPUT_BYTES);
  const state = new Int32Array(shared, 0, 8);
  let worker: Worker;
  try {
    worker = new Worker(`data:text/javascript,${encodeURIComponent(RUNNER)}`, { type: "module" });
  } catch {
    return runDirect(cmd, args, cwd, timeoutMs, slow);
  }
  try {
    const group = Deno.build.os !== "windows";
    worker.postMessage({ shared, cmd, args, cwd, timeoutMs, graceMs: KILL_GRACE_MS, group });
    const start = performance.now();
    // The worker reports by then even when the compiler ignores SIGTERM; this is the backstop.
    const limit = start + timeoutMs + 2 * KILL_GRACE_MS + 5000;
    while (Atomics.load(state, 0) === 0) {
      const now = performance.now();
      if (now >= limit) return { code: null, output: "", timedOut: true };
      const started = Atomics.load(state, 5) === 1;
      if (!started && now >= start + WORKER_START_MS) {
        worker.terminate();
        return runDirect(cmd, args, cwd, timeoutMs, slow);
      }
      const due = slow !== undefined && !slow.shown;
      if (due && now >= slow.at) {
        slow.shown = true;
        slow.show();
        continue;
      }
      let until = due ? Math.min(limit, slow.at) : limit;
      if (!started) until = Math.min(until, start + WORKER_START_MS);
      Atomics.wait(state, 0, 0, Math.max(1, until - now));
    }
    const output = new TextDecoder().decode(new Uint8Array(shared, HEADER_BYTES, state[4]));
    if (state[3] === 1) return { code: null, output: "", timedOut: false, spawnError: output };
    if (state[2] === 1) return { code: null, output, timedOut: true };
    return { code: state[1], output, timedOut: false };
  } finally {
    worker.terminate();
  }
}

/**
 * Runs a command synchronously without a worker: under coreutils' `timeout` where there is one
 * (which stops it, and its children, at the deadline), otherwise with no time limit. The notice
 * for a slow build is shown first, since nothing can wake this thread while the command runs.
 */
function runDirect(
  cmd: string,
  args: string[],
  cwd: string,
  timeoutMs: number,
  slow: SlowNotice | undefined,
): RunOutcome {
  if (slow !== undefined && !slow.shown) {
    slow.shown = true;
    slow.show();
  }
  const limited = Deno.build.os !== "windows" && commandRuns("timeout");
  const seconds = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
  const grace = String(KILL_GRACE_MS / 1000);
  try {
    const out = new Deno.Command(limited ? "timeout" : cmd, {
      args: limited ? ["-k", grace, seconds, cmd, ...args] : args,
      cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    const output = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    // timeout's own statuses: 124 (stopped), 137 (killed after the grace), 126/127 (cannot run).
    if (limited && (out.code === 124 || out.code === 137)) {
      return { code: null, output, timedOut: true };
    }
    if (limited && (out.code === 126 || out.code === 127)) {
      return { code: null, output: "", timedOut: false, spawnError: output.trim() };
    }
    return { code: out.code, output, timedOut: false };
  } catch (e) {
    return { code: null, output: "", timedOut: false, spawnError: (e as Error).message };
  }
}
