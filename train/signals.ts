/**
 * Graceful stops. SIGINT or SIGTERM asks a training run to stop at its next safe point (after the
 * current step, or between two batches of an evaluation or a probe), write a checkpoint and a summary,
 * and exit with 128 + the signal's number (130, 143). SIGUSR1 asks for a checkpoint and the run goes
 * on (a scheduler's early warning).
 *
 * One request is one request, however many processes deliver it: through `npx` or `deno task` a
 * single Ctrl-C can reach the run twice (once from the terminal's process group, once forwarded by
 * the wrapper), so a stop signal within {@link DUPLICATE_WINDOW_MS} of the first is the same request.
 * A second, deliberate one after that window exits at once without a checkpoint; an atomic write in
 * flight is removed first (train/atomic.ts), so no `.tmp-*` file is left behind.
 *
 * Tests pause a run at a named point with the environment variable `SUPCON_FAULT_POINT`
 * (see {@link faultPoint}), so they can signal or kill it there deterministically.
 * @module
 */

/** The signals a run stops on. */
export const STOP_SIGNALS = ["SIGINT", "SIGTERM"] as const;

/** The signal that asks for a checkpoint without stopping. */
export const CHECKPOINT_SIGNAL = "SIGUSR1";

/** Exit status after SIGINT (128 + 2, as a shell reports it). */
export const SIGINT_EXIT = 130;
/** Exit status after SIGTERM (128 + 15). */
export const SIGTERM_EXIT = 143;
/** @deprecated The exit status of a second SIGINT: {@link SIGINT_EXIT}. */
export const SECOND_SIGINT_EXIT = SIGINT_EXIT;

/** Milliseconds within which a second stop signal counts as the same request (a duplicate delivery). */
export const DUPLICATE_WINDOW_MS = 1500;

/** The exit status for a run stopped by `signal` (128 + its number; 1 for anything else). */
export function signalExitCode(signal: string | null): number {
  return signal === "SIGINT" ? SIGINT_EXIT : signal === "SIGTERM" ? SIGTERM_EXIT : 1;
}

/** Thrown (as an abort reason) where a long phase notices a stop request: evaluation, probe. */
export class StopRequestedError extends Error {
  /** The error for a stop requested by `signal`. */
  constructor(readonly signal: string) {
    super(`${signal}: stopped`);
    this.name = "StopRequestedError";
  }
}

/**
 * Synchronous cleanups run before a forced exit (second signal): atomic writers register their
 * temporary file here, run locks their lock file. Returns the function that unregisters `fn`.
 */
export function onForcedExit(fn: () => void): () => void {
  forcedExitCleanups.add(fn);
  return () => forcedExitCleanups.delete(fn);
}
const forcedExitCleanups = new Set<() => void>();

/** Runs every registered cleanup, ignoring their errors. */
export function runForcedExitCleanups(): void {
  for (const fn of [...forcedExitCleanups]) {
    try {
      fn();
    } catch { /* best effort */ }
  }
  forcedExitCleanups.clear();
}

/** Stop requests received by any {@link StopSignals} of this process (read by {@link faultPoint}). */
let requestsSeen = 0;

/** Options of {@link StopSignals}. */
export interface StopSignalsOptions {
  /** No message on the first signal. */
  quiet?: boolean;
  /** What the first signal's message says happens next (default "finishing the current step, then writing a checkpoint"). */
  notice?: string;
  /** Duplicate window in milliseconds (default {@link DUPLICATE_WINDOW_MS}). */
  duplicateWindowMs?: number;
}

/**
 * Listens for SIGINT/SIGTERM (and SIGUSR1) while installed; {@link signal} names the first stop
 * request, {@link abortSignal} aborts with a {@link StopRequestedError} at that moment.
 */
export class StopSignals implements Disposable {
  /** The first stop signal received, or null. */
  signal: string | null = null;
  /** `performance.now()` of the first stop signal. */
  at = 0;
  /** Set by SIGUSR1: a checkpoint is wanted at the next safe point (the loop clears it). */
  checkpointRequested = false;
  /** Duplicate deliveries ignored so far. */
  duplicates = 0;
  /** Text of the first signal's message (changeable as a run moves from phase to phase). */
  notice: string;
  readonly #abort = new AbortController();
  readonly #window: number;
  #listeners: [Deno.Signal, () => void][] = [];

  /** Installs the listeners. Unsupported signals are skipped. */
  constructor(options: StopSignalsOptions = {}) {
    this.#window = options.duplicateWindowMs ?? DUPLICATE_WINDOW_MS;
    this.notice = options.notice ?? "finishing the current step, then writing a checkpoint";
    const quiet = options.quiet ?? false;
    for (const sig of [...STOP_SIGNALS, CHECKPOINT_SIGNAL] as const) {
      const fn = () => this.#receive(sig, quiet);
      try {
        Deno.addSignalListener(sig, fn);
        this.#listeners.push([sig, fn]);
      } catch { /* signal unsupported on this platform */ }
    }
  }

  #receive(sig: Deno.Signal, quiet: boolean): void {
    if (sig === CHECKPOINT_SIGNAL) {
      this.checkpointRequested = true;
      requestsSeen++;
      if (!quiet) console.error(`\n${sig}: writing a checkpoint after the current step, then going on`);
      return;
    }
    const now = performance.now();
    if (this.signal === null) {
      this.signal = sig;
      this.at = now;
      requestsSeen++;
      this.#abort.abort(new StopRequestedError(sig));
      if (!quiet) {
        console.error(
          `\n${sig}: ${this.notice}… (a second ${sig} after ${
            (this.#window / 1000).toFixed(1)
          } s exits at once, without a checkpoint)`,
        );
      }
      return;
    }
    if (now - this.at < this.#window) {
      this.duplicates++; // the same request, delivered twice (process group + a forwarding wrapper)
      return;
    }
    console.error(`\nsecond ${sig}: exiting without a checkpoint`);
    runForcedExitCleanups();
    Deno.exit(signalExitCode(sig));
  }

  /** Aborted (reason: {@link StopRequestedError}) at the first stop request. */
  get abortSignal(): AbortSignal {
    return this.#abort.signal;
  }

  /** The exit status for the request received (130 SIGINT, 143 SIGTERM; 0 when none). */
  get exitCode(): number {
    return this.signal === null ? 0 : signalExitCode(this.signal);
  }

  /** Throws {@link StopRequestedError} when a stop was requested. */
  throwIfStopped(): void {
    if (this.signal !== null) throw new StopRequestedError(this.signal);
  }

  /** Removes the listeners. Safe to call twice. */
  dispose(): void {
    for (const [sig, fn] of this.#listeners.splice(0)) {
      try {
        Deno.removeSignalListener(sig, fn);
      } catch { /* ignore */ }
    }
  }

  /** `using signals = new StopSignals()`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

const faultHits = new Map<string, number>();

/**
 * A named point at which tests pause a run: with `SUPCON_FAULT_POINT=<name>` (or `<name>#<k>` for its
 * k-th visit; several separated by commas) the process prints `fault point: <name>` on stderr and
 * waits until a signal arrives (stop or SIGUSR1; with `SUPCON_FAULT_HOLD=1`, forever), so that a test
 * can signal or kill it there. Without the variable (or without permission to read it) it costs one
 * map lookup. Points: `startup` (the run folder locked, nothing trained), `step` (after each training step), `write:<file name>` (an atomic write whose
 * bytes are in the temporary file, not yet renamed), `evaluate`, `probe` (train/ evaluation, as the
 * Section 5 trainer calls them), `finish` (after the final checkpoint).
 */
export async function faultPoint(name: string): Promise<void> {
  const wanted = faultPointSetting();
  if (wanted === null) return;
  const k = (faultHits.get(name) ?? 0) + 1;
  faultHits.set(name, k);
  if (!wanted.includes(name) && !wanted.includes(`${name}#${k}`)) return;
  const seen = requestsSeen;
  console.error(`fault point: ${name}`);
  const hold = readEnv("SUPCON_FAULT_HOLD") === "1";
  const deadline = performance.now() + 60_000;
  while ((hold || requestsSeen === seen) && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
}

let faultSetting: string[] | null | undefined;
function faultPointSetting(): string[] | null {
  if (faultSetting === undefined) {
    const v = readEnv("SUPCON_FAULT_POINT");
    faultSetting = v ? v.split(",").map((s) => s.trim()) : null;
  }
  return faultSetting;
}

function readEnv(name: string): string | undefined {
  try {
    if (typeof Deno === "undefined") return undefined;
    if (Deno.permissions.querySync?.({ name: "env", variable: name }).state !== "granted") return undefined;
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}
