/**
 * `collect`'s Section 5 view: the test-error table of Fig. 7 (right), loss × dataset × augmentation, plus
 * the pre-activation ResNet-18 column (Section 5.2's conjecture), ours beside the paper's numbers
 * (experiments/paper.ts). Seeds of one configuration are averaged (mean ± population std); a configuration
 * planned but not finished says how many of its cells are done. Pure: records in, rows out.
 * @module
 */
import { PAPER_TEST_ERROR } from "../experiments/paper.ts";
import { LOSS_LABELS } from "../experiments/section5/time_to_fit.ts";
import type { CellRecord } from "./collect_cells.ts";

/** One configuration of the table (all seeds of it). */
export interface TestErrorEntry {
  dataset: string;
  loss: "ce" | "ce-fix" | "sc";
  augment: boolean;
  preact: boolean;
  /** Cells planned with this configuration. */
  planned: number;
  /** Test errors (fractions) of its done cells, in seed order. */
  testErrors: number[];
  /** Mean test error in % (null when no cell is done). */
  meanPct: number | null;
  /** Population standard deviation in % over the seeds (null with fewer than two). */
  stdPct: number | null;
  /** The paper's test error in % (null: the paper has none, e.g. pre-activation or synthetic data). */
  paperPct: number | null;
}

const LOSSES = ["ce", "ce-fix", "sc"] as const;

/** The paper's test error (%) of a configuration, or null. */
export function paperTestError(
  dataset: string,
  loss: string,
  augment: boolean,
  preact: boolean,
): number | null {
  if (preact || (dataset !== "cifar10" && dataset !== "cifar100")) return null;
  const t = PAPER_TEST_ERROR[dataset][augment ? "aug" : "noAug"];
  return (t as Record<string, number>)[loss] ?? null;
}

/** The table's entries, from every Section 5 cell (done or not), in dataset, model, aug, loss order. */
export function testErrorEntries(records: readonly CellRecord[]): TestErrorEntry[] {
  const groups = new Map<string, CellRecord[]>();
  for (const r of records) {
    if (r.cell.kind !== "section5") continue;
    const l = r.cell.labels;
    const key = JSON.stringify([l.dataset, l.preact, !l.augment, LOSSES.indexOf(l.loss), l.loss]);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.keys()].sort().map((key) => {
    const rs = groups.get(key)!;
    const l = rs[0].cell.labels;
    const errs = rs.filter((r) => r.state === "done" && r.testError !== null)
      .sort((a, b) => a.cell.labels.seed - b.cell.labels.seed).map((r) => r.testError!);
    const mean = errs.length ? errs.reduce((a, b) => a + b, 0) / errs.length : null;
    const std = mean !== null && errs.length > 1
      ? Math.sqrt(errs.reduce((a, e) => a + (e - mean) ** 2, 0) / errs.length)
      : null;
    return {
      dataset: l.dataset,
      loss: l.loss,
      augment: l.augment,
      preact: l.preact,
      planned: rs.length,
      testErrors: errs,
      meanPct: mean === null ? null : 100 * mean,
      stdPct: std === null ? null : 100 * std,
      paperPct: paperTestError(l.dataset, l.loss, l.augment, l.preact),
    };
  });
}

/** Our value of an entry as printed: "6.1", "6.1 ± 0.2 (3 seeds)", "6.1 (1 of 3 done)", "not done (0 of 2)". */
export function ourCell(e: TestErrorEntry | undefined): string {
  if (!e) return "";
  const n = e.testErrors.length;
  if (e.meanPct === null) return `not done (0 of ${e.planned})`;
  let s = e.meanPct.toFixed(1);
  if (e.stdPct !== null) s += ` ± ${e.stdPct.toFixed(1)}`;
  if (n < e.planned) s += ` (${n} of ${e.planned} done)`;
  else if (n > 1) s += ` (${n} seeds)`;
  return s;
}

/** CSV rows of the table (one per configuration). */
export function testErrorCsvRows(entries: readonly TestErrorEntry[]): Record<string, unknown>[] {
  return entries.map((e) => ({
    dataset: e.dataset,
    loss: e.loss,
    augment: e.augment,
    preact: e.preact,
    cells_planned: e.planned,
    cells_done: e.testErrors.length,
    test_error_pct: e.meanPct ?? "",
    test_error_pct_std: e.stdPct ?? "",
    paper_test_error_pct: e.paperPct ?? "",
    difference_pct: e.meanPct !== null && e.paperPct !== null ? e.meanPct - e.paperPct : "",
  }));
}

/** Columns of {@link testErrorCsvRows}. */
export const TEST_ERROR_COLUMNS = [
  "dataset",
  "loss",
  "augment",
  "preact",
  "cells_planned",
  "cells_done",
  "test_error_pct",
  "test_error_pct_std",
  "paper_test_error_pct",
  "difference_pct",
] as const;

/** One markdown table per dataset, as the paper prints it: a row per loss, ours beside the paper's. */
export interface TestErrorTable {
  dataset: string;
  headers: string[];
  rows: string[][];
}

/**
 * The tables of Fig. 7 (right): per dataset, rows CE / CE-fix / SC; columns "ours" and "paper" for
 * w/ aug. and w/o aug. (standard ResNet-18), then ours for the pre-activation ResNet-18 (the paper has
 * no number: its Section 5.2 conjecture). A column appears only when the plan has its cells.
 */
export function testErrorTables(entries: readonly TestErrorEntry[]): TestErrorTable[] {
  const datasets = [...new Set(entries.map((e) => e.dataset))];
  return datasets.map((dataset) => {
    const mine = entries.filter((e) => e.dataset === dataset);
    const find = (loss: string, augment: boolean, preact: boolean) =>
      mine.find((e) => e.loss === loss && e.augment === augment && e.preact === preact);
    const variants: { augment: boolean; preact: boolean }[] = [];
    for (const preact of [false, true]) {
      for (const augment of [true, false]) {
        if (mine.some((e) => e.augment === augment && e.preact === preact)) {
          variants.push({ augment, preact });
        }
      }
    }
    const headers = ["Loss"];
    for (const v of variants) {
      const aug = v.augment ? "w/ aug." : "w/o aug.";
      headers.push(v.preact ? `ours, pre-act, ${aug}` : `ours, ${aug}`);
      if (!v.preact) headers.push(`paper, ${aug}`);
    }
    const losses = LOSSES.filter((l) => mine.some((e) => e.loss === l));
    const rows = losses.map((loss) => {
      const row = [LOSS_LABELS[loss] ?? loss];
      for (const v of variants) {
        const e = find(loss, v.augment, v.preact);
        row.push(ourCell(e));
        if (!v.preact) {
          const p = paperTestError(dataset, loss, v.augment, false);
          row.push(p === null ? "—" : p.toFixed(1));
        }
      }
      return row;
    });
    return { dataset, headers, rows };
  });
}
