/**
 * `deno task sweep collect DIR [--json]`: merges every cell of a sweep into DIR, each file written
 * atomically (train/atomic.ts):
 *
 * - `results.csv`: one row per cell of the plan, done or not (labels, state, final step and loss, errors,
 *   the SC probe's accuracy, the Fig. 7 geometry statistics where the cell has them, the time to fit of a
 *   random-label cell, elapsed seconds);
 * - `test_error.csv`: Section 5's test-error table (Fig. 7, right), ours beside the paper's numbers;
 * - `time_to_fit.csv`, `evaluations.csv` and `time_to_fit_<dataset>.svg/png`: Figs. 2/8;
 * - `report.md`: the tables, the figures, the paper's numbers and the "Missing cells" section, which
 *   lists every cell not done (pending, running, failed), so a partly finished sweep collects too.
 *
 * Reads the cells only; runs alongside a sweep in progress. Needs `--allow-read` and `--allow-write`
 * (the sweep folder); `--allow-env=PLOT_FONT` lets the figures use another font.
 * @module
 */
import { join } from "node:path";
import { writeCsv } from "../train/csv.ts";
import { printJsonLine } from "../experiments/lib/summary.ts";
import { type CellRecord, readCell } from "./collect_cells.ts";
import { type CellState, readPlan, type SweepPlan } from "./plan.ts";
import { TEST_ERROR_COLUMNS, testErrorCsvRows, testErrorEntries } from "./collect_table.ts";
import { FIT_COLUMNS, fitCsvRows, type FitFigure, fitFigures, fitPoints } from "./collect_fit.ts";
import { renderReport, stateCounts } from "./collect_report.ts";
import { writeReport } from "../experiments/report.ts";
import { UsageError } from "./errors.ts";

/** Columns of results.csv. */
export const RESULTS_COLUMNS = [
  "index",
  "id",
  "kind",
  "loss",
  "dataset",
  "augment",
  "preact",
  "fraction",
  "seed",
  "state",
  "step",
  "iterations",
  "final_loss",
  "train_error",
  "test_error",
  "test_accuracy",
  "probe_test_accuracy",
  "probe_loss",
  "simplex_gamma",
  "gamma_across_means",
  "gamma_across_weights",
  "gamma_to_class_means",
  "loss_empirical",
  "loss_optimum",
  "fitted",
  "time_to_fit",
  "fit_cap",
  "elapsed_s",
  "failure",
  "dir",
] as const;

/** The results.csv row of a cell (empty cells where a value is unknown). */
export function resultsRow(r: CellRecord): Record<string, unknown> {
  const l = r.cell.labels, g = r.geometry;
  const randomLabels = r.cell.kind === "random-labels";
  return {
    index: r.cell.index,
    id: r.cell.id,
    kind: r.cell.kind,
    loss: l.loss,
    dataset: l.dataset,
    augment: l.augment,
    preact: l.preact,
    fraction: l.fraction ?? (randomLabels ? 0 : ""),
    seed: l.seed,
    state: r.state,
    step: r.step,
    iterations: r.iterations,
    final_loss: r.finalLoss,
    train_error: r.trainError,
    test_error: r.testError,
    test_accuracy: r.testError === null ? null : 1 - r.testError,
    probe_test_accuracy: r.probeAccuracy,
    probe_loss: r.probeLoss,
    simplex_gamma: g?.simplexGamma,
    gamma_across_means: g?.acrossMeans,
    gamma_across_weights: g?.acrossWeights,
    gamma_to_class_means: g?.toClassMeans,
    loss_empirical: g?.bound?.empirical,
    loss_optimum: g?.bound?.theory,
    fitted: randomLabels && r.fit ? r.fit.fitted : "",
    time_to_fit: r.fit?.iterations ?? "",
    fit_cap: r.fit?.cap ?? "",
    elapsed_s: r.elapsedSeconds,
    failure: r.failure,
    dir: r.cell.dir,
  };
}

/** A cell that is not done. */
export interface MissingCell {
  index: number;
  id: string;
  state: Exclude<CellState, "done">;
  dir: string;
  failure: string | null;
}

/** What {@link collect} wrote and found. */
export interface CollectResult {
  dir: string;
  grid: string;
  scale: SweepPlan["scale"];
  cells: number;
  counts: Record<CellState, number>;
  /** Every cell not done, by index. */
  missing: MissingCell[];
  /** Files written. */
  paths: {
    results: string;
    report: string;
    testError?: string;
    timeToFit?: string;
    evaluations?: string;
    figures: FitFigure[];
  };
}

/** Options of {@link collect}. */
export interface CollectOptions {
  /** No warnings on stderr. */
  quiet?: boolean;
  /** The time stamp written into the report (default now). */
  now?: Date;
}

/** Merges the sweep in `dir` (see the module doc); returns what was written. */
export async function collect(dir: string, opts: CollectOptions = {}): Promise<CollectResult> {
  const plan = await readPlan(dir);
  const cells = [...plan.cells].sort((a, b) => a.index - b.index);
  const records: CellRecord[] = [];
  for (const cell of cells) records.push(await readCell(dir, cell));
  const files: { name: string; path: string; what: string }[] = [];
  const paths: CollectResult["paths"] = {
    results: join(dir, "results.csv"),
    report: join(dir, "report.md"),
    figures: [],
  };
  await writeCsv(paths.results, records.map(resultsRow), RESULTS_COLUMNS);
  files.push({ name: "results.csv", path: paths.results, what: "one row per cell of the plan" });

  const entries = testErrorEntries(records);
  if (entries.length) {
    paths.testError = join(dir, "test_error.csv");
    await writeCsv(paths.testError, testErrorCsvRows(entries), TEST_ERROR_COLUMNS);
    files.push({
      name: "test_error.csv",
      path: paths.testError,
      what: "Section 5's test-error table (Fig. 7, right), ours beside the paper's",
    });
  }

  const points = fitPoints(records);
  let figureError: string | null = null;
  if (points.length) {
    paths.timeToFit = join(dir, "time_to_fit.csv");
    await writeCsv(paths.timeToFit, fitCsvRows(points), FIT_COLUMNS);
    files.push({
      name: "time_to_fit.csv",
      path: paths.timeToFit,
      what: "Figs. 2/8: time to fit per (loss, p)",
    });
    paths.evaluations = join(dir, "evaluations.csv");
    await writeCsv(
      paths.evaluations,
      records.filter((r) => r.cell.kind === "random-labels").flatMap((r) =>
        r.evaluations.map((e) => ({
          index: r.cell.index,
          id: r.cell.id,
          loss: r.cell.labels.loss,
          dataset: r.cell.labels.dataset,
          p: r.cell.labels.fraction ?? 0,
          seed: r.cell.labels.seed,
          step: e.step,
          train_error: e.trainError,
          train_error_clean: e.trainErrorClean ?? "",
          test_error: e.testError ?? "",
        }))
      ),
      [
        "index",
        "id",
        "loss",
        "dataset",
        "p",
        "seed",
        "step",
        "train_error",
        "train_error_clean",
        "test_error",
      ],
    );
    files.push({
      name: "evaluations.csv",
      path: paths.evaluations,
      what: "every training-error evaluation of the random-label cells",
    });
    const widthOf = (dataset: string) => {
      const c = cells.find((x) => x.kind === "random-labels" && x.labels.dataset === dataset)?.config;
      const model = c?.model === "preact-resnet18" ? "pre-act ResNet-18" : "ResNet-18";
      return `${dataset}, ${model}${typeof c?.width === "number" && c.width !== 1 ? ` ×${c.width}` : ""}`;
    };
    try {
      paths.figures = await fitFigures(dir, points, widthOf);
    } catch (e) {
      figureError = (e as Error).message.split("\n")[0];
      if (!opts.quiet) console.error(`warning: time-to-fit figure not written: ${figureError}`);
    }
    for (const f of paths.figures) {
      const name = f.svg.slice(dir.length).replace(/^[\\/]+/, "");
      files.push({ name, path: f.svg, what: `Figs. 2/8 for ${f.dataset} (SVG; PNG beside it)` });
    }
  }

  const collectedAt = (opts.now ?? new Date()).toISOString();
  const markdown = renderReport({
    dir,
    plan,
    records,
    entries,
    points,
    figures: paths.figures,
    files,
    figureError,
    collectedAt,
  });
  await writeReport(dir, markdown);
  const missing: MissingCell[] = records.filter((r) => r.state !== "done").map((r) => ({
    index: r.cell.index,
    id: r.cell.id,
    state: r.state as MissingCell["state"],
    dir: r.cell.dir,
    failure: r.failure,
  }));
  return {
    dir,
    grid: plan.grid,
    scale: plan.scale,
    cells: records.length,
    counts: stateCounts(records),
    missing,
    paths,
  };
}

/** The one-screen text of a collect. */
export function describeCollect(r: CollectResult): string {
  const c = r.counts;
  const lines = [
    `collected ${r.dir}: ${c.done} of ${r.cells} cells done (${c.running} running, ${c.pending} pending, ` +
    `${c.failed} failed)`,
    `  ${r.paths.results}`,
    ...(r.paths.testError ? [`  ${r.paths.testError}`] : []),
    ...(r.paths.timeToFit ? [`  ${r.paths.timeToFit}`] : []),
    ...r.paths.figures.map((f) => `  ${f.svg}${f.png ? ` (+ .png)` : ""}`),
    `  ${r.paths.report}`,
  ];
  if (r.missing.length) {
    const shown = r.missing.slice(0, 12).map((m) => `#${m.index} ${m.state}`).join(", ");
    const more = r.missing.length > 12 ? `, … (${r.missing.length - 12} more in report.md)` : "";
    lines.push(`missing ${r.missing.length}: ${shown}${more}`);
  }
  return lines.join("\n");
}

/**
 * `collect DIR [--json]` (dispatched by sweep/main.ts, which turns a PlanError or UsageError into exit 2):
 * returns the exit status.
 */
export async function collectMain(args: readonly string[]): Promise<number> {
  const json = args.includes("--json");
  const rest = args.filter((a) => a !== "--json");
  if (rest.length !== 1 || rest[0].startsWith("-")) {
    throw new UsageError(`collect takes one plan folder (and --json), got ${JSON.stringify(rest.join(" "))}`);
  }
  const result = await collect(rest[0], { quiet: json });
  if (json) printJsonLine(result);
  else console.error(describeCollect(result));
  return 0;
}
