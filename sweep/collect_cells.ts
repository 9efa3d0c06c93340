/**
 * `collect`'s reader: one cell folder of a sweep → one {@link CellRecord} (its state, final step and
 * loss, errors, the SC probe's accuracy, the Fig. 7 geometry statistics where the cell has them, the
 * time to fit of a random-label cell, elapsed seconds), from the files the trainer and run-cell write:
 * done.json / failed.json, summary.json, metrics.csv, fit.json and a geometry summary. Reads only; a
 * missing or damaged file leaves its fields empty and is named in {@link CellRecord.problems}.
 * @module
 */
import { join } from "node:path";
import { readCsv } from "../train/csv.ts";
import { RUN_FILES } from "../experiments/section5/types.ts";
import { type FitEvaluation, type TimeToFit, timeToFit } from "../experiments/section5/time_to_fit.ts";
import { type CellState, cellState, SWEEP_FILES, type SweepCell } from "./plan.ts";

/** The Fig. 7 statistics of one cell (means of γ; gaps are mean − the simplex value). */
export interface CellGeometry {
  /** γ at the regular simplex with K vertices. */
  simplexGamma: number;
  /** Mean γ across class means. */
  acrossMeans: number;
  /** Mean γ across the classifier (or probe) weights; null without weights. */
  acrossWeights: number | null;
  /** Mean γ of each representation to its class mean (1 at collapse). */
  toClassMeans: number;
  /**
   * Section 5.2, where the cell has it (a `deno task geometry` report): the empirical training loss
   * against its optimum (SC: Theorem 2's mean over all multisets; CE, CE-fix: Theorem 1 at the measured ρ_Z).
   */
  bound: { empirical: number; theory: number } | null;
}

/** Everything `collect` knows about one cell. */
export interface CellRecord {
  /** The cell of the plan. */
  cell: SweepCell;
  /** Its folder (absolute or relative to the working directory, as the sweep folder was given). */
  dir: string;
  /** pending, running, done or failed. */
  state: CellState;
  /** Completed iterations (done: the summary's; otherwise the last metrics row's, 0 without one). */
  step: number;
  /** The iteration budget T of the cell's config. */
  iterations: number | null;
  /** Training loss per sample of the last logged batch (SC: the sum over the b anchors / b). */
  finalLoss: number | null;
  /** Final training error (w.r.t. the labels trained on). */
  trainError: number | null;
  /** Final test error. */
  testError: number | null;
  /** SC: the linear probe's test accuracy (1 − test error; SC is evaluated through the probe). */
  probeAccuracy: number | null;
  /** SC: the probe's last batch loss. */
  probeLoss: number | null;
  /** Fig. 7 statistics, when the cell has them. */
  geometry: CellGeometry | null;
  /** Random-label cells: the time to fit (from fit.json, else from metrics.csv's evaluations). */
  fit: TimeToFit | null;
  /** Random-label cells: every evaluation of the training error. */
  evaluations: (FitEvaluation & { trainErrorClean?: number; testError?: number })[];
  /** Wall-clock seconds of the cell (done.json; else the metrics' training seconds). */
  elapsedSeconds: number | null;
  /** failed.json's message (with its exit code). */
  failure: string | null;
  /** Files that were expected but could not be read. */
  problems: string[];
}

type Json = Record<string, unknown>;

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const obj = (v: unknown): Json | null =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : null;

async function readJson(path: string, problems: string[]): Promise<Json | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) problems.push(`${path}: ${(e as Error).message}`);
    return null;
  }
  try {
    return obj(JSON.parse(text)) ?? (problems.push(`${path}: not a JSON object`), null);
  } catch (e) {
    problems.push(`${path}: not valid JSON (${(e as Error).message.split("\n")[0]})`);
    return null;
  }
}

/** The message of a failed.json, whatever its shape. */
function failureText(f: Json): string {
  const code = typeof f.exitCode === "number" ? `exit ${f.exitCode}` : null;
  const text = typeof f.error === "string" ? f.error : null;
  return [code, text].filter(Boolean).join(": ") || "failed";
}

/**
 * The geometry summary of a cell: `summary.geometry` (a GeometrySummary, or a `deno task geometry`
 * report holding one), or `geometry.json` / `geometry/summary.json` in the cell folder.
 */
export function geometryOf(source: Json | null): CellGeometry | null {
  if (!source) return null;
  const g = obj(source.acrossMeans) ? source : obj(source.geometry);
  if (!g) return null;
  const inner = obj(g.acrossMeans) ? g : obj(g.geometry);
  if (!inner) return null;
  const means = obj(inner.acrossMeans), toMean = obj(inner.toClassMeans), w = obj(inner.acrossWeights);
  const simplexGamma = num(inner.simplexGamma), acrossMeans = num(means?.mean);
  const toClassMeans = num(toMean?.mean);
  if (simplexGamma === null || acrossMeans === null || toClassMeans === null) return null;
  const report = obj(g.acrossMeans) ? source : g;
  const sc = obj(report.sc), ce = obj(report.ce);
  const empirical = num(sc?.empirical) ?? num(ce?.empirical);
  const theory = sc ? num(sc.boundMultisetMean) : num(ce?.bound);
  const bound = empirical !== null && theory !== null ? { empirical, theory } : null;
  return { simplexGamma, acrossMeans, acrossWeights: num(w?.mean), toClassMeans, bound };
}

/** Reads one cell of the sweep in `sweepDir`. */
export async function readCell(sweepDir: string, cell: SweepCell): Promise<CellRecord> {
  const dir = join(sweepDir, cell.dir);
  const problems: string[] = [];
  const state = cellState(sweepDir, cell);
  const done = state === "done" ? await readJson(join(dir, SWEEP_FILES.done), problems) : null;
  const failed = state === "failed" ? await readJson(join(dir, SWEEP_FILES.failed), problems) : null;
  const summary = obj(done?.summary) ?? await readJson(join(dir, RUN_FILES.summary), problems);
  let rows: Record<string, string | number>[] = [];
  try {
    rows = await readCsv(join(dir, RUN_FILES.metrics), { numbers: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      problems.push(`${join(dir, RUN_FILES.metrics)}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  const config = obj(summary?.config) ?? (cell.config as unknown as Json);
  const iterations = num(config.iterations);
  const metrics = obj(summary?.metrics);
  const lastLossRow = rows.findLast((r) => typeof r.loss_per_sample === "number");
  const lastLog = obj(summary?.lastLog);
  const lastRow = rows.at(-1);
  // The summary of a finished run is authoritative; a running cell has only its metrics rows.
  const step = num(summary?.step) ?? num(lastRow?.step) ?? 0;
  const finalLoss = num(lastLossRow?.loss_per_sample) ?? num(lastLog?.loss_per_sample);
  const evalRow = rows.findLast((r) => typeof r.test_error === "number");
  const trainError = num(metrics?.trainError) ?? (state === "done" ? num(evalRow?.train_error) : null);
  const testError = num(metrics?.testError) ?? (state === "done" ? num(evalRow?.test_error) : null);
  const probeLoss = num(metrics?.probeLoss) ?? (state === "done" ? num(evalRow?.probe_loss) : null);
  const isSc = cell.labels.loss === "sc";
  const geometry = geometryOf(obj(summary?.geometry) ? summary : null) ??
    geometryOf(await readJson(join(dir, "geometry.json"), problems)) ??
    geometryOf(await readJson(join(dir, "geometry", RUN_FILES.summary), problems));

  let fit: TimeToFit | null = null;
  let evaluations: CellRecord["evaluations"] = [];
  if (cell.kind === "random-labels") {
    const record = obj(done?.fit) ?? await readJson(join(dir, SWEEP_FILES.fit), problems);
    if (record && Array.isArray(record.evaluations)) {
      evaluations = record.evaluations as CellRecord["evaluations"];
      const saved = obj(record.fit);
      const cap = num(saved?.cap) ?? iterations;
      fit = cap ? timeToFit(evaluations, cap) : null;
    } else {
      evaluations = rows.filter((r) => typeof r.train_error === "number" && typeof r.step === "number").map(
        (r) => ({
          step: r.step as number,
          trainError: r.train_error as number,
          ...(typeof r.train_error_clean === "number" ? { trainErrorClean: r.train_error_clean } : {}),
          ...(typeof r.test_error === "number" ? { testError: r.test_error } : {}),
        }),
      );
      if (iterations && evaluations.length) fit = timeToFit(evaluations, iterations);
    }
  }
  const elapsedSeconds = num(done?.elapsedSeconds) ??
    num(rows.findLast((r) => typeof r.elapsed_s === "number")?.elapsed_s);
  return {
    cell,
    dir,
    state,
    step,
    iterations,
    finalLoss,
    trainError,
    testError,
    probeAccuracy: isSc && testError !== null ? 1 - testError : null,
    probeLoss: isSc ? probeLoss : null,
    geometry,
    fit,
    evaluations,
    elapsedSeconds,
    failure: failed ? failureText(failed) : null,
    problems,
  };
}
