/**
 * Progress reporting for long loops, on stderr.
 *
 * - TTY: one line redrawn in place with `\r` (at most ~10 redraws/s).
 * - Not a TTY (logs, CI): a full line every `intervalMs` (default 5 s) or whenever another 10 % is done.
 * - `quiet: true`: silent.
 *
 * ```ts
 * const bar = new Progress(steps, { label: "train", quiet: cfg.quiet });
 * for (let i = 0; i < steps; i++) { ...; bar.tick(1, `loss ${loss.toFixed(4)}`); }
 * bar.done();
 * ```
 * @module
 */

/** Options for {@link Progress}. */
export interface ProgressOptions {
  /** Prefix shown before the bar. */
  label?: string;
  /** No output at all. */
  quiet?: boolean;
  /** Unit name for the rate (default "it"). */
  unit?: string;
  /** Non-TTY line interval in ms (default 5000). */
  intervalMs?: number;
  /** Bar width in characters (default 24). */
  width?: number;
  /** Override TTY detection (default `Deno.stderr.isTerminal()`). */
  tty?: boolean;
  /** Output sink (default: synchronous write to stderr). */
  write?: (text: string) => void;
  /** Clock in ms (default `performance.now`). */
  now?: () => number;
}

const encoder = new TextEncoder();

function writeStderr(text: string): void {
  const bytes = encoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
}

/** `75` → `1m15s`, `3725` → `1h02m`, `9.4` → `9s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

function formatRate(rate: number, unit: string): string {
  if (!Number.isFinite(rate) || rate <= 0) return `? ${unit}/s`;
  if (rate >= 100) return `${rate.toFixed(0)} ${unit}/s`;
  if (rate >= 1) return `${rate.toFixed(1)} ${unit}/s`;
  return `${(1 / rate).toFixed(1)} s/${unit}`;
}

/** Progress bar with rate and ETA. */
export class Progress {
  readonly total: number;
  #done = 0;
  #info = "";
  readonly #opts: Required<Omit<ProgressOptions, "label">> & { label: string };
  readonly #start: number;
  #lastDraw = -Infinity;
  #lastDecile = 0;
  #finished = false;
  #lastLine = -1;

  constructor(total: number, opts: ProgressOptions = {}) {
    this.total = Math.max(0, total);
    let tty = opts.tty;
    if (tty === undefined) {
      try {
        tty = Deno.stderr.isTerminal();
      } catch {
        tty = false;
      }
    }
    this.#opts = {
      label: opts.label ?? "",
      quiet: opts.quiet ?? false,
      unit: opts.unit ?? "it",
      intervalMs: opts.intervalMs ?? 5000,
      width: opts.width ?? 24,
      tty,
      write: opts.write ?? writeStderr,
      now: opts.now ?? (() => performance.now()),
    };
    this.#start = this.#opts.now();
    if (!tty) this.#lastDraw = this.#start;
  }

  /** Items completed so far. */
  get completed(): number {
    return this.#done;
  }

  /** Advance by `n` items; `info` (e.g. current loss) is shown after the ETA. */
  tick(n = 1, info?: string): void {
    this.update(this.#done + n, info);
  }

  /** Set the absolute number of completed items. */
  update(done: number, info?: string): void {
    this.#done = Math.min(Math.max(0, done), this.total || done);
    if (info !== undefined) this.#info = info;
    if (this.#opts.quiet || this.#finished) return;
    const t = this.#opts.now();
    if (this.#opts.tty) {
      if (t - this.#lastDraw >= 100 || this.#done >= this.total) {
        this.#lastDraw = t;
        this.#opts.write(`\r${this.line()}\x1b[K`);
      }
    } else {
      const decile = this.total > 0 ? Math.floor((10 * this.#done) / this.total) : 0;
      if (t - this.#lastDraw >= this.#opts.intervalMs || decile > this.#lastDecile) {
        this.#opts.write(this.line() + "\n");
        this.#lastLine = this.#done;
        this.#lastDraw = t;
        this.#lastDecile = decile;
      }
    }
  }

  /** The current status line (no newline). */
  line(): string {
    const { label, unit, width } = this.#opts;
    const elapsed = (this.#opts.now() - this.#start) / 1000;
    const rate = elapsed > 0 ? this.#done / elapsed : NaN;
    const frac = this.total > 0 ? Math.min(1, this.#done / this.total) : 0;
    const filled = Math.round(frac * width);
    const bar = "#".repeat(filled) + "-".repeat(width - filled);
    const eta = this.#done >= this.total
      ? `done in ${formatDuration(elapsed)}`
      : `ETA ${formatDuration((this.total - this.#done) / rate)}`;
    const pct = `${(frac * 100).toFixed(0).padStart(3)}%`;
    return `${label ? label + " " : ""}[${bar}] ${pct} ${this.#done}/${this.total} ${
      formatRate(rate, unit)
    } ${eta}${this.#info ? ` | ${this.#info}` : ""}`;
  }

  /** Final line (ends the `\r` line on a TTY). Idempotent. */
  done(info?: string): void {
    if (this.#finished) return;
    if (info !== undefined) this.#info = info;
    this.#finished = true;
    if (this.#opts.quiet) return;
    if (this.#opts.tty) this.#opts.write(`\r${this.line()}\x1b[K\n`);
    else if (this.#lastLine !== this.#done || info !== undefined) this.#opts.write(this.line() + "\n");
  }
}
