/**
 * A text progress display for downloads and training loops.
 *
 * On a terminal it keeps one line up to date (redrawn with `\r`, at most every `redrawMs`): label,
 * bar, percentage, count, rate and ETA. When the output is a file or a pipe (CI logs), it prints
 * plain lines instead, at most one every `intervalMs`, plus a final line from `finish` — so a log
 * gets one line per epoch and an occasional line within long epochs, never a flood of `\r`.
 *
 * @example
 * ```ts
 * import { Progress } from "@eql/eql/data";
 * const bar = new Progress({ label: "epoch 1/200", total: 3, unit: "batch" });
 * for (let i = 0; i < 3; i++) bar.tick(1, `loss=${(1 / (i + 1)).toFixed(3)}`);
 * bar.finish("acc=41.2%");
 * ```
 *
 * @module
 */

/** Options of {@linkcode Progress}. */
export interface ProgressOptions {
  /** Text in front of the bar, e.g. `"epoch 3/200"` or a file name. */
  label?: string;
  /** Number of items expected; unknown (no bar, no ETA) when absent. */
  total?: number;
  /** Count at the start, e.g. bytes already on disk for a resumed download (default 0). */
  start?: number;
  /** Unit name; `"B"` formats counts and rates as bytes (KiB, MiB, …). Default `"it"`. */
  unit?: string;
  /** Bar width in characters (default 24). */
  width?: number;
  /** Output stream (default `"stderr"`, keeping stdout clean for results). */
  stream?: "stderr" | "stdout";
  /** Force terminal (true) or plain-line (false) output; default: whether the stream is a TTY. */
  tty?: boolean;
  /** Plain-line mode: least time between two lines, in ms (default 10 000). */
  intervalMs?: number;
  /** Terminal mode: least time between two redraws, in ms (default 100). */
  redrawMs?: number;
  /** Where text goes instead of the stream (for tests or custom loggers). */
  write?: (text: string) => void;
  /** Clock in ms (default `performance.now`). */
  now?: () => number;
}

function checkCount(name: string, v: number): void {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw new RangeError(`${name} must be a finite number ≥ 0, got ${v}`);
  }
}

/**
 * Formats seconds as `m:ss` or `h:mm:ss`.
 *
 * @param seconds Duration (non-finite or negative gives `"?"`).
 * @returns The formatted duration.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./progress.ts";
 * formatDuration(3725); // "1:02:05"
 * formatDuration(65); // "1:05"
 * ```
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const ss = String(sec).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/**
 * Formats a count in a unit: bytes get binary prefixes, other units up to 4 significant digits.
 *
 * @param value The count.
 * @param unit `"B"` for bytes, anything else is appended as is.
 * @returns The formatted count.
 *
 * @example
 * ```ts
 * import { formatCount } from "./progress.ts";
 * formatCount(1536, "B"); // "1.5 KiB"
 * formatCount(12.345, "it"); // "12.35 it"
 * ```
 */
export function formatCount(value: number, unit: string): string {
  if (unit === "B") {
    const prefixes = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = value, p = 0;
    while (Math.abs(v) >= 1024 && p < prefixes.length - 1) {
      v /= 1024;
      p++;
    }
    return `${p === 0 ? Math.round(v) : v.toFixed(1)} ${prefixes[p]}`;
  }
  const text = Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
  return `${text} ${unit}`;
}

/**
 * A progress line for a loop over a known or unknown number of items.
 *
 * @example
 * ```ts
 * import { Progress } from "@eql/eql/data";
 * const lines: string[] = [];
 * const p = new Progress({ total: 10, tty: false, write: (t) => lines.push(t) });
 * p.update(10);
 * p.finish();
 * ```
 */
export class Progress {
  #label: string;
  #total: number | undefined;
  #start: number;
  #current: number;
  #unit: string;
  #width: number;
  #tty: boolean;
  #intervalMs: number;
  #redrawMs: number;
  #write: (text: string) => void;
  #now: () => number;
  #t0: number;
  #lastDraw = -Infinity;
  #lastLength = 0;
  #finished = false;

  /**
   * Starts the clock.
   *
   * @param options Label, total, unit, output and timing options.
   * @throws {RangeError} When a count, width or interval is invalid.
   */
  constructor(options: ProgressOptions = {}) {
    this.#label = options.label ?? "";
    this.#start = options.start ?? 0;
    checkCount("start", this.#start);
    if (options.total !== undefined) checkCount("total", options.total);
    this.#total = options.total;
    this.#current = this.#start;
    this.#unit = options.unit ?? "it";
    this.#width = options.width ?? 24;
    if (!Number.isInteger(this.#width) || this.#width < 1) {
      throw new RangeError(`width must be a positive integer, got ${options.width}`);
    }
    this.#intervalMs = options.intervalMs ?? 10_000;
    this.#redrawMs = options.redrawMs ?? 100;
    checkCount("intervalMs", this.#intervalMs);
    checkCount("redrawMs", this.#redrawMs);
    const stream = options.stream === "stdout" ? Deno.stdout : Deno.stderr;
    if (
      options.stream !== undefined && options.stream !== "stdout" && options.stream !== "stderr"
    ) {
      throw new RangeError(`stream must be "stdout" or "stderr", got ${String(options.stream)}`);
    }
    this.#tty = options.tty ?? stream.isTerminal();
    const encoder = new TextEncoder();
    this.#write = options.write ?? ((text) => {
      const bytes = encoder.encode(text);
      for (let off = 0; off < bytes.length;) off += stream.writeSync(bytes.subarray(off));
    });
    this.#now = options.now ?? (() => performance.now());
    this.#t0 = this.#now();
    // A terminal shows the bar at once; a log's first line waits a full interval.
    this.#lastDraw = this.#tty ? -Infinity : this.#t0;
  }

  /** Items done so far. */
  get current(): number {
    return this.#current;
  }

  /** Items expected, or undefined when unknown. */
  get total(): number | undefined {
    return this.#total;
  }

  /** Sets the expected number of items once it becomes known (e.g. from a Content-Length). */
  set total(value: number | undefined) {
    if (value !== undefined) checkCount("total", value);
    this.#total = value;
  }

  /** Seconds since the display was created. */
  get elapsed(): number {
    return (this.#now() - this.#t0) / 1000;
  }

  /** Items per second since the start (not counting the `start` offset). */
  get rate(): number {
    const t = this.elapsed;
    return t > 0 ? (this.#current - this.#start) / t : 0;
  }

  /**
   * Sets the count and redraws when due.
   *
   * @param current Items done (absolute).
   * @param info Extra text at the end of the line, e.g. `"loss=0.731"`.
   * @throws {RangeError} When `current` is negative or not finite.
   */
  update(current: number, info?: string): void {
    checkCount("current", current);
    this.#current = current;
    const now = this.#now();
    const due = this.#tty ? this.#redrawMs : this.#intervalMs;
    if (now - this.#lastDraw >= due && !this.#finished) {
      this.#lastDraw = now;
      this.#emit(info, false);
    }
  }

  /**
   * Adds to the count and redraws when due.
   *
   * @param n Items just finished (default 1).
   * @param info Extra text at the end of the line.
   */
  tick(n = 1, info?: string): void {
    this.update(this.#current + n, info);
  }

  /**
   * Prints the final state (always), ending the line. Later calls do nothing.
   *
   * @param info Extra text, e.g. the epoch's metrics.
   */
  finish(info?: string): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#emit(info, true);
  }

  /**
   * The status text as it would be drawn now, without control characters.
   *
   * @param info Extra text at the end of the line.
   * @returns For example `"epoch 3 [######......] 50.0% 98/196 12.5 batch/s ETA 0:08 loss=1.2"`.
   */
  line(info?: string): string {
    const parts: string[] = [];
    if (this.#label) parts.push(this.#label);
    const total = this.#total;
    const unit = this.#unit;
    const rate = this.rate;
    if (total !== undefined && total > 0) {
      const frac = Math.min(1, this.#current / total);
      const filled = Math.round(frac * this.#width);
      parts.push(`[${"#".repeat(filled)}${".".repeat(this.#width - filled)}]`);
      parts.push(`${(frac * 100).toFixed(1).padStart(5)}%`);
      parts.push(
        unit === "B"
          ? `${formatCount(this.#current, unit)}/${formatCount(total, unit)}`
          : `${this.#current}/${total}`,
      );
    } else {
      parts.push(unit === "B" ? formatCount(this.#current, unit) : `${this.#current} ${unit}`);
    }
    parts.push(`${formatCount(rate, unit)}/s`);
    if (this.#finished) {
      parts.push(`in ${formatDuration(this.elapsed)}`);
    } else if (total !== undefined && rate > 0) {
      parts.push(`ETA ${formatDuration(Math.max(0, total - this.#current) / rate)}`);
    }
    if (info) parts.push(info);
    return parts.join(" ");
  }

  #emit(info: string | undefined, final: boolean): void {
    const text = this.line(info);
    if (this.#tty) {
      // Pad over the previous, possibly longer, line instead of relying on escape codes.
      const pad = Math.max(0, this.#lastLength - text.length);
      this.#lastLength = text.length;
      this.#write(`\r${text}${" ".repeat(pad)}${final ? "\n" : ""}`);
    } else {
      this.#write(`${text}\n`);
    }
  }
}
