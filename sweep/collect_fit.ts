/**
 * `collect`'s Section 5.3 view (Figs. 2 and 8): iterations to fit against the label corruption p, one line
 * per loss, one figure per dataset, drawn by the experiment's own figure (`timeToFitFigure`, saved with
 * `saveFigure`). Seeds of one (dataset, loss, p) are combined: fitted when every finished seed fitted, at
 * the mean of their times to fit; otherwise "not fitted" (the red square at the cap).
 * @module
 */
import { PAPER_RANDOM_LABELS } from "../experiments/paper.ts";
import { saveFigure } from "../experiments/lib/plot.ts";
import { type TimeToFit, timeToFitFigure, type TimeToFitPoint } from "../experiments/section5/time_to_fit.ts";
import type { CellRecord } from "./collect_cells.ts";

/** One (dataset, loss, p) of the figure, over its seeds. */
export interface FitPoint {
  dataset: string;
  loss: "ce" | "ce-fix" | "sc";
  p: number;
  /** Cells planned. */
  planned: number;
  /** Times to fit of the done cells (null: that seed did not fit), in seed order. */
  seeds: (number | null)[];
  /** Combined over the done seeds; null when none is done. */
  fit: TimeToFit | null;
}

/** The points of every random-label cell, in dataset, loss, p order. */
export function fitPoints(records: readonly CellRecord[]): FitPoint[] {
  const groups = new Map<string, CellRecord[]>();
  for (const r of records) {
    if (r.cell.kind !== "random-labels") continue;
    const l = r.cell.labels;
    const key = JSON.stringify([l.dataset, l.loss, l.fraction ?? 0]);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const order = ["ce", "ce-fix", "sc"];
  const points = [...groups.values()].map((rs): FitPoint => {
    const l = rs[0].cell.labels;
    const done = rs.filter((r) => r.state === "done" && r.fit !== null)
      .sort((a, b) => a.cell.labels.seed - b.cell.labels.seed);
    const seeds = done.map((r) => r.fit!.iterations);
    let fit: TimeToFit | null = null;
    if (done.length) {
      const fits = done.map((r) => r.fit!);
      const fitted = fits.every((f) => f.fitted);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      fit = {
        fitted,
        iterations: fitted ? mean(fits.map((f) => f.iterations!)) : null,
        cap: Math.max(...fits.map((f) => f.cap)),
        evaluations: fits.reduce((a, f) => a + f.evaluations, 0),
        lastStep: Math.max(...fits.map((f) => f.lastStep)),
        lastError: mean(fits.map((f) => f.lastError)),
        bestError: Math.min(...fits.map((f) => f.bestError)),
      };
    }
    return { dataset: l.dataset, loss: l.loss, p: l.fraction ?? 0, planned: rs.length, seeds, fit };
  });
  return points.sort((a, b) =>
    a.dataset.localeCompare(b.dataset) || order.indexOf(a.loss) - order.indexOf(b.loss) || a.p - b.p
  );
}

/** CSV rows (one per point; `time_to_fit` empty when not fitted or not done). */
export function fitCsvRows(points: readonly FitPoint[]): Record<string, unknown>[] {
  return points.map((pt) => ({
    dataset: pt.dataset,
    loss: pt.loss,
    p: pt.p,
    cells_planned: pt.planned,
    cells_done: pt.seeds.length,
    fitted: pt.fit ? pt.fit.fitted : "",
    time_to_fit: pt.fit?.iterations ?? "",
    seeds_time_to_fit: pt.seeds.map((s) => s ?? "not fitted").join(" "),
    cap: pt.fit?.cap ?? "",
    best_train_error: pt.fit?.bestError ?? "",
  }));
}

/** Columns of {@link fitCsvRows}. */
export const FIT_COLUMNS = [
  "dataset",
  "loss",
  "p",
  "cells_planned",
  "cells_done",
  "fitted",
  "time_to_fit",
  "seeds_time_to_fit",
  "cap",
  "best_train_error",
] as const;

/** Per dataset and loss: the largest p fitted and the smallest p not fitted (among done points). */
export interface FitLimit {
  dataset: string;
  loss: string;
  /** Largest p below which (and at which) every done point fitted; null when p = smallest already failed. */
  fitsUpTo: number | null;
  /** Smallest p not fitted (null: every done point fitted). */
  firstNotFitted: number | null;
  /** The paper's largest p fitted, where its text states one (SC on CIFAR-10: 0.8). */
  paperFitsUpTo: number | null;
}

/** The fit limits of every (dataset, loss) with a done point. */
export function fitLimits(points: readonly FitPoint[]): FitLimit[] {
  const keys = [...new Set(points.filter((p) => p.fit).map((p) => `${p.dataset}\u0000${p.loss}`))];
  return keys.map((k) => {
    const [dataset, loss] = k.split("\u0000");
    const done = points.filter((p) => p.dataset === dataset && p.loss === loss && p.fit);
    const firstNot = done.find((p) => !p.fit!.fitted)?.p ?? null;
    const below = done.filter((p) => firstNot === null || p.p < firstNot);
    const paper = loss === "sc"
      ? (PAPER_RANDOM_LABELS.scFitsUpTo as Record<string, number>)[dataset] ?? null
      : null;
    return {
      dataset,
      loss,
      fitsUpTo: below.length ? below.at(-1)!.p : null,
      firstNotFitted: firstNot,
      paperFitsUpTo: paper,
    };
  });
}

/** A written figure. */
export interface FitFigure {
  dataset: string;
  svg: string;
  png?: string;
}

/**
 * Draws one figure per dataset, `<dir>/time_to_fit_<dataset>.svg` and `.png` (atomic writes), from the
 * done points; a dataset without one gets none. `describe` names the dataset's setting in the title.
 */
export async function fitFigures(
  dir: string,
  points: readonly FitPoint[],
  describe: (dataset: string) => string = (d) => d,
): Promise<FitFigure[]> {
  const out: FitFigure[] = [];
  for (const dataset of [...new Set(points.map((p) => p.dataset))]) {
    const done = points.filter((p) => p.dataset === dataset && p.fit);
    if (!done.length) continue;
    const cap = Math.max(...done.map((p) => p.fit!.cap));
    const pts: TimeToFitPoint[] = done.map((p) => ({ loss: p.loss, p: p.p, fit: p.fit! }));
    const spec = timeToFitFigure(pts, cap, `Time to fit vs label corruption (${describe(dataset)})`);
    const fig = await saveFigure(dir, `time_to_fit_${dataset.replace(/[^A-Za-z0-9_-]/g, "_")}`, spec);
    out.push({ dataset, ...fig });
  }
  return out;
}
