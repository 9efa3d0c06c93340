/**
 * The shared skeleton of the figure scripts (fig1, fig4, fig5, fig6): run → CSVs → figure → summary.
 *
 * ```ts
 * export function run(cfg: FigNConfig): Promise<FigNSummary> {
 *   return runFigure(cfg, async (dir) => {
 *     const result = await simulate(cfg);                  // the GPU work
 *     return {
 *       csvs: [["figN.csv", rows(result)]],                // written in order into cfg.out
 *       figure: { name: "figN", spec: figNSpec(result) },  // figN.svg and figN.png
 *       summary: ({ files, seconds }) => ({ experiment: "figN", ..., seconds, files }),
 *       report: (s) => console.error(...),                 // skipped with --quiet
 *     };
 *   });
 * }
 * if (import.meta.main) await figureMain(FIGN_OPTIONS, { name: "figN", description: "…" }, run);
 * ```
 *
 * The skeleton initialises the device, creates the folder, writes config.json first, then the CSVs,
 * the figure and summary.json; `files` lists the CSVs, the SVG, the PNG, summary.json and config.json.
 * @module
 */
import { join } from "node:path";
import { initDevice } from "../../engine/gpu.ts";
import {
  type BuiltinConfig,
  type ExperimentConfig,
  type ExperimentMeta,
  type OptionsSpec,
  parseExperimentArgs,
  runDir,
  saveConfig,
} from "./cli.ts";
import { writeCsv } from "../../train/csv.ts";
import { saveFigure, type VegaLiteSpec } from "./plot.ts";
import { printJsonLine, writeSummary } from "./summary.ts";

/** A CSV file of a figure: its name in the run folder and its rows. */
export type FigureCsv = readonly [name: string, rows: readonly Record<string, unknown>[]];

/** What a figure's computation hands to the skeleton. */
export interface FigureOutput<S> {
  /** CSV files, written in this order. */
  csvs: readonly FigureCsv[];
  /** The figure, written as `<name>.svg` and `<name>.png`. */
  figure: { name: string; spec: VegaLiteSpec };
  /** The summary, given every file written (with summary.json and config.json) and the wall time. */
  summary(done: { files: string[]; seconds: number }): S;
  /** Result lines on stderr after summary.json is written (not called with --quiet). */
  report?(summary: S, dir: string): void;
}

/**
 * Runs a figure script: device, folder, config.json, then `compute(dir)` (the GPU work), its CSVs, its
 * figure and summary.json. Returns the summary.
 */
export async function runFigure<S>(
  cfg: BuiltinConfig,
  compute: (dir: string) => Promise<FigureOutput<S>>,
): Promise<S> {
  const t0 = performance.now();
  await initDevice();
  const dir = await runDir(cfg.out);
  await saveConfig(dir, cfg);
  const out = await compute(dir);
  const files: string[] = [];
  for (const [name, rows] of out.csvs) {
    const path = join(dir, name);
    await writeCsv(path, rows as Record<string, unknown>[]);
    files.push(path);
  }
  const fig = await saveFigure(dir, out.figure.name, out.figure.spec);
  files.push(fig.svg, fig.png!);
  const summary = out.summary({
    files: [...files, join(dir, "summary.json"), join(dir, "config.json")],
    seconds: (performance.now() - t0) / 1000,
  });
  await writeSummary(dir, summary);
  if (!cfg.quiet) out.report?.(summary, dir);
  return summary;
}

/** The command line of a figure script: parse `args` (exit 0 on --help, 2 on a usage error), run, --json. */
export async function figureMain<const S extends OptionsSpec, R>(
  spec: S,
  meta: ExperimentMeta,
  run: (cfg: ExperimentConfig<S>) => Promise<R>,
  args: readonly string[] = Deno.args,
): Promise<R> {
  const cfg = parseExperimentArgs(args, spec, meta);
  const summary = await run(cfg);
  if (cfg.json) printJsonLine(summary);
  return summary;
}
