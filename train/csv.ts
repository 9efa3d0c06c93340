/**
 * CSV helpers: in-memory formatting (`toCsv`), atomic whole-file writes (`writeCsv`), parsing (`parseCsv`,
 * `readCsv`), and an appending, resumable {@link CsvLogger} for training curves.
 *
 * Backed by the `csv` project packages (csv-stringify / csv-parse), pinned exactly.
 * @module
 */

// deno-lint-ignore no-import-prefix -- pinned inline: scripts must also run when imported by URL (no import map)
import { stringify } from "npm:csv-stringify@6.6.0/sync";
// deno-lint-ignore no-import-prefix -- pinned inline: scripts must also run when imported by URL (no import map)
import { parse } from "npm:csv-parse@6.1.0/sync";
import { FileWriteError, writeFileAtomic } from "./atomic.ts";

/** A row: column name → value. `null`/`undefined` become empty cells; objects are JSON-encoded. */
export type CsvRow = Record<string, unknown>;
/** A parsed cell: strings, or numbers when `{ numbers: true }` is requested. */
export type CsvValue = string | number;

const encoder = new TextEncoder();

/** Columns in first-seen order over all rows. */
export function inferColumns(rows: readonly CsvRow[]): string[] {
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) seen.add(k);
  return [...seen];
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return String(v); // shortest round-trip repr; NaN / Infinity / -Infinity as text
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Date) return v.toISOString();
  return JSON.stringify(v);
}

/**
 * Format rows as CSV text (header line + one line per row, `\n` line endings, RFC 4180 quoting).
 * `columns` defaults to the union of row keys in first-seen order. Numbers keep full precision.
 */
export function toCsv(rows: readonly CsvRow[], columns?: readonly string[]): string {
  const cols = columns ? [...columns] : inferColumns(rows);
  if (cols.length === 0) return "";
  const records = rows.map((r) => cols.map((c) => cell(r[c])));
  return stringify([cols, ...records], { record_delimiter: "unix" });
}

/** Write rows to `path` atomically (see {@link toCsv}). */
export async function writeCsv(
  path: string,
  rows: readonly CsvRow[],
  columns?: readonly string[],
): Promise<void> {
  await writeFileAtomic(path, toCsv(rows, columns));
}

const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?Infinity$|^NaN$/;

/** Parse options. */
export interface ParseCsvOptions {
  /** Convert cells that look like numbers (incl. NaN/±Infinity) to numbers. Default false. */
  numbers?: boolean;
}

/** Parse CSV text with a header line into row objects. */
export function parseCsv(text: string, opts: { numbers: true }): Record<string, CsvValue>[];
export function parseCsv(text: string, opts?: ParseCsvOptions): Record<string, string>[];
export function parseCsv(text: string, opts: ParseCsvOptions = {}): Record<string, CsvValue>[] {
  const rows = parse(text, { columns: true, skip_empty_lines: true, bom: true }) as Record<string, string>[];
  if (!opts.numbers) return rows;
  return rows.map((r) => {
    const o: Record<string, CsvValue> = {};
    for (const [k, v] of Object.entries(r)) o[k] = NUMERIC.test(v) ? Number(v) : v;
    return o;
  });
}

/** Read and parse a CSV file with a header line. */
export async function readCsv(path: string, opts: { numbers: true }): Promise<Record<string, CsvValue>[]>;
export async function readCsv(path: string, opts?: ParseCsvOptions): Promise<Record<string, string>[]>;
export async function readCsv(path: string, opts: ParseCsvOptions = {}): Promise<Record<string, CsvValue>[]> {
  return parseCsv(await Deno.readTextFile(path), opts);
}

/** Options for {@link CsvLogger.open}. */
export interface CsvLoggerOptions {
  /**
   * Column order. If omitted: the existing file's header when resuming, else the keys of the first logged row.
   * Logging a row with a key outside the columns throws (missing keys give empty cells).
   */
  columns?: readonly string[];
  /**
   * Resume an existing log: keep only rows whose `stepColumn` value is ≤ this step (plus nothing partial), then
   * append. Use `Infinity` to keep every complete row. If omitted, an existing file is overwritten (fresh run).
   */
  resumeAfterStep?: number;
  /** Name of the step column used for resume truncation. Default `"step"`. */
  stepColumn?: string;
  /** Resume: keep at most this many rows (e.g. the rows a checkpoint was written after). */
  maxRows?: number;
}

/**
 * Appending CSV logger. The header is written once; every {@link log} call writes one complete line straight
 * to the file (no user-space buffering), so a crash loses at most the line being written. A torn last line
 * is discarded on resume.
 *
 * ```ts
 * const log = await CsvLogger.open(`${dir}/train.csv`, { resumeAfterStep: ckptStep });
 * log.log({ step, loss, acc });
 * log.close();
 * ```
 */
export class CsvLogger {
  readonly path: string;
  readonly stepColumn: string;
  #file: Deno.FsFile | undefined;
  #columns: string[] | undefined;
  #rows: number;
  #lastStep: number | undefined;

  private constructor(
    path: string,
    file: Deno.FsFile,
    columns: string[] | undefined,
    stepColumn: string,
    rows: number,
    lastStep: number | undefined,
  ) {
    this.path = path;
    this.#file = file;
    this.#columns = columns;
    this.stepColumn = stepColumn;
    this.#rows = rows;
    this.#lastStep = lastStep;
  }

  /** Open (create, overwrite, or resume) a CSV log at `path`. The parent directory must exist. */
  static async open(path: string, opts: CsvLoggerOptions = {}): Promise<CsvLogger> {
    const stepColumn = opts.stepColumn ?? "step";
    let columns = opts.columns ? [...opts.columns] : undefined;
    let kept: Record<string, string>[] = [];
    let lastStep: number | undefined;

    if (opts.resumeAfterStep !== undefined) {
      if (Number.isNaN(opts.resumeAfterStep)) {
        throw new Error(`CsvLogger: resumeAfterStep is NaN for ${path}`);
      }
      let text: string | undefined;
      try {
        text = await Deno.readTextFile(path);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      if (text !== undefined && text.length > 0) {
        // Drop a torn (unterminated) last line left by a crash mid-write.
        const end = text.lastIndexOf("\n");
        text = end < 0 ? "" : text.slice(0, end + 1);
        let records: string[][] = [];
        try {
          records = text.length
            ? parse(text, { relax_column_count: true, skip_empty_lines: true, bom: true }) as string[][]
            : [];
        } catch (e) {
          throw new Error(`${path}: not a valid CSV file: ${(e as Error).message.split("\n")[0]}`);
        }
        if (records.length > 0) {
          const header = records[0];
          if (columns && columns.join("\u0000") !== header.join("\u0000")) {
            throw new Error(
              `CsvLogger: ${path}: existing header [${header.join(", ")}] differs from requested columns [${
                columns.join(", ")
              }]`,
            );
          }
          columns = header;
          const si = header.indexOf(stepColumn);
          if (si < 0) {
            throw new Error(`CsvLogger: ${path}: cannot resume, no "${stepColumn}" column in header`);
          }
          for (const rec of records.slice(1)) {
            if (opts.maxRows !== undefined && kept.length >= opts.maxRows) break;
            if (rec.length !== header.length) continue;
            const s = Number(rec[si]);
            if (rec[si] === "" || !Number.isFinite(s) || s > opts.resumeAfterStep) continue;
            kept.push(Object.fromEntries(header.map((h, i) => [h, rec[i]])));
            lastStep = lastStep === undefined ? s : Math.max(lastStep, s);
          }
        }
      }
      if (columns) await writeFileAtomic(path, toCsv(kept, columns));
    }

    const file = await Deno.open(
      path,
      columns && opts.resumeAfterStep !== undefined
        ? { write: true, append: true, create: true }
        : { write: true, create: true, truncate: true },
    );
    const logger = new CsvLogger(path, file, columns, stepColumn, kept.length, lastStep);
    kept = [];
    if (columns && opts.resumeAfterStep === undefined) logger.#writeLine(toCsv([], columns));
    return logger;
  }

  /** Column order (undefined until known). */
  get columns(): readonly string[] | undefined {
    return this.#columns;
  }
  /** Number of data rows in the file (kept on resume + logged since). */
  get rowCount(): number {
    return this.#rows;
  }
  /** Largest step seen (kept on resume or logged), if any. */
  get lastStep(): number | undefined {
    return this.#lastStep;
  }

  #writeLine(text: string): void {
    if (!this.#file) throw new Error(`CsvLogger: ${this.path} is closed`);
    const bytes = encoder.encode(text);
    let off = 0;
    try {
      while (off < bytes.length) off += this.#file.writeSync(bytes.subarray(off));
    } catch (e) {
      throw new FileWriteError(this.path, e);
    }
  }

  /** Append one row (written immediately). */
  log(row: CsvRow): void {
    if (!this.#columns) {
      this.#columns = Object.keys(row);
      this.#writeLine(toCsv([], this.#columns));
    }
    for (const k of Object.keys(row)) {
      if (!this.#columns.includes(k)) {
        throw new Error(`CsvLogger: ${this.path}: column "${k}" not in header [${this.#columns.join(", ")}]`);
      }
    }
    const cols = this.#columns;
    this.#writeLine(stringify([cols.map((c) => cell(row[c]))], { record_delimiter: "unix" }));
    this.#rows++;
    const s = Number(row[this.stepColumn]);
    if (row[this.stepColumn] !== undefined && Number.isFinite(s)) {
      this.#lastStep = this.#lastStep === undefined ? s : Math.max(this.#lastStep, s);
    }
  }

  /** Flush to stable storage (fsync); optional, each row already reaches the OS on {@link log}. */
  sync(): void {
    try {
      this.#file?.syncSync();
    } catch { /* fsync unsupported */ }
  }

  /** Close the file. Idempotent. */
  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
