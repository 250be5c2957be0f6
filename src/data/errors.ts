/**
 * The error raised when a dataset file or archive is missing, truncated or malformed.
 *
 * @module
 */

/**
 * A dataset file or archive that cannot be used: missing, truncated, of the wrong size, holding an
 * out-of-range label or a corrupt archive header. The message names the path and what was wrong;
 * `path` repeats the path for programs that want to react to it.
 *
 * @example
 * ```ts
 * import { DatasetError } from "@eql/eql/data";
 * const error = new DatasetError("data/test_batch.bin", "file is missing");
 * error.message; // "data/test_batch.bin: file is missing"
 * error.path; // "data/test_batch.bin"
 * ```
 */
export class DatasetError extends Error {
  /** The file or archive (or archive member, as `archive!member`) the problem was found in. */
  readonly path: string;

  /**
   * Creates the error.
   *
   * @param path The file or archive member at fault.
   * @param problem What was wrong, in sentence case without a trailing period.
   * @param options Standard error options (`cause`).
   */
  constructor(path: string, problem: string, options?: ErrorOptions) {
    super(`${path}: ${problem}`, options);
    this.name = "DatasetError";
    this.path = path;
  }
}
