/**
 * Exit codes and error classes of `deno task sweep`.
 *
 * - 0: done (run-cell: the cell is done, now or before);
 * - 2: usage, or a plan or grid that cannot be used (the message names the file and the cell);
 * - 75 ({@link REQUEUE_EXIT}, EX_TEMPFAIL): run-cell was stopped early (SIGTERM, SIGINT, or the
 *   scheduler's early warning SIGUSR1) and wrote a checkpoint: run the cell again to continue it. The
 *   Slurm batch script answers it with `scontrol requeue` (a non-zero exit alone does not requeue);
 * - run-cell's other failures keep `deno task train`'s codes (experiments/train.ts): 3 diverged,
 *   4 data, 5 damaged run folder, 6 the cell is in use by another process, 7 a file cannot be written,
 *   8 the device; 1 anything else;
 * - submit: 1 when sbatch failed or a local cell failed.
 * @module
 */

/** run-cell's status after an early stop with a checkpoint: requeue the cell (sysexits' EX_TEMPFAIL). */
export const REQUEUE_EXIT = 75;
/** Usage and plan errors. */
export const USAGE_EXIT = 2;
/** `deno task train`'s code for a run folder locked by another process (not a failure of the cell). */
export const LOCKED_EXIT = 6;

/** A command line that cannot be used; the message says which option. */
export class UsageError extends Error {
  /** The error with `message`. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The first line of an error's message. */
export function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}
