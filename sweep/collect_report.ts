/**
 * `collect`'s report.md: what was collected, the Section 5 test-error table and geometry statistics, the
 * Figs. 2/8 time-to-fit view, the paper's numbers beside ours, and every cell not done ("Missing cells").
 * Pure: builds the markdown text from what collect read and wrote.
 * @module
 */
import { fmtNum, fmtPct, fmtSeconds, MarkdownReport } from "../experiments/report.ts";
import { PAPER_PREACT_CONJECTURE, PAPER_RANDOM_LABELS, PAPER_SECTION_5_2 } from "../experiments/paper.ts";
import { LOSS_LABELS } from "../experiments/section5/time_to_fit.ts";
import type { CellRecord } from "./collect_cells.ts";
import type { CellState, SweepCell, SweepPlan } from "./plan.ts";
import { type TestErrorEntry, testErrorTables } from "./collect_table.ts";
import { type FitFigure, fitLimits, type FitPoint } from "./collect_fit.ts";

/** What the report is built from. */
export interface ReportInput {
  /** The sweep folder (links are relative to it). */
  dir: string;
  plan: SweepPlan;
  records: CellRecord[];
  entries: TestErrorEntry[];
  points: FitPoint[];
  figures: FitFigure[];
  /** Files written, by name (relative links are made from `dir`). */
  files: { name: string; path: string; what: string }[];
  /** A figure that could not be drawn, and why. */
  figureError: string | null;
  collectedAt: string;
}

/** The labels of a cell in words: "SC, cifar10, w/ aug., pre-act, p = 0.4, seed 0". */
export function cellLabel(cell: SweepCell): string {
  const l = cell.labels;
  return [
    LOSS_LABELS[l.loss] ?? l.loss,
    l.dataset,
    l.augment ? "w/ aug." : "w/o aug.",
    ...(l.preact ? ["pre-act"] : []),
    ...(cell.kind === "random-labels" ? [`p = ${l.fraction ?? 0}`] : []),
    `seed ${l.seed}`,
  ].join(", ");
}

/** Counts of cells per state. */
export function stateCounts(records: readonly CellRecord[]): Record<CellState, number> {
  const c: Record<CellState, number> = { pending: 0, running: 0, done: 0, failed: 0 };
  for (const r of records) c[r.state]++;
  return c;
}

/** A paper number as the paper prints it (2.48e-4, 824.731). */
function paperNum(x: number): string {
  return Math.abs(x) < 1e-3 ? x.toExponential() : String(x);
}

const STATE_ORDER: CellState[] = ["failed", "running", "pending"];

/** The report's markdown. */
export function renderReport(inp: ReportInput): string {
  const { plan, records } = inp;
  const r = new MarkdownReport(`Sweep ${plan.grid} (${plan.scale} scale): collected results`);
  const counts = stateCounts(records);
  const total = records.length;
  const doneSeconds = records.filter((x) => x.state === "done")
    .reduce((a, x) => a + (x.elapsedSeconds ?? 0), 0);
  r.paragraph(
    `Collected ${inp.collectedAt} from \`${inp.dir}\`: **${counts.done} of ${total} cells done**` +
      ` (${counts.running} running, ${counts.pending} pending, ${counts.failed} failed). ` +
      `Plan of ${plan.createdAt}, project ${plan.versions?.project ?? "?"}, Deno ${
        plan.versions?.deno ?? "?"
      }. ` +
      `The done cells took ${fmtSeconds(doneSeconds)} of wall-clock time together.` +
      (plan.scale === "paper"
        ? ""
        : ` This is a **${plan.scale}**-scale sweep: its numbers stand beside the paper's full-scale ones ` +
          "(ResNet-18, 100k iterations at batch 256), not expected to match them."),
  );
  r.bullets(inp.files.map((f) => `[\`${f.name}\`](${f.name}): ${f.what}`));

  if (inp.entries.length) {
    r.heading(2, "Section 5: test error (Fig. 7, right)");
    r.paragraph(
      "Test error in % after training (SC: through the linear probe on the frozen encoder); mean ± std " +
        "over seeds where there are several. Paper: ResNet-18, 100k iterations, batch 256 " +
        "(`experiments/paper.ts`). The pre-activation columns test Section 5.2's conjecture, " +
        `${PAPER_PREACT_CONJECTURE}.`,
    );
    for (const t of testErrorTables(inp.entries)) {
      r.heading(3, t.dataset);
      r.table(t.headers, t.rows);
    }
    const geo = records.filter((x) => x.cell.kind === "section5" && x.state === "done");
    r.heading(3, "Geometry statistics (Fig. 7, left three panels)");
    const withGeo = geo.filter((x) => x.geometry);
    if (!withGeo.length) {
      r.paragraph(
        "No done cell has geometry statistics (its summary has no `geometry`, and there is no " +
          "`geometry.json` or `geometry/summary.json`); `deno task geometry --checkpoint CELL_DIR " +
          "--out CELL_DIR/geometry` computes them for a cell.",
      );
    } else {
      r.paragraph(
        "Means of γ(x, y) = 1 − arccos(cos∠(x, y))/π (Eq. 7) on the training set. At the regular simplex the " +
          "first two equal the simplex value; the third is 1 at collapse. The paper draws these as histograms " +
          "and prints no number.",
      );
      r.table(
        ["Cell", "γ simplex", "γ across class means", "γ across weights", "γ to class means", "test err. %"],
        withGeo.map((x) => [
          `#${x.cell.index} ${cellLabel(x.cell)}`,
          fmtNum(x.geometry!.simplexGamma, 4),
          fmtNum(x.geometry!.acrossMeans, 4),
          fmtNum(x.geometry!.acrossWeights, 4),
          fmtNum(x.geometry!.toClassMeans, 4),
          fmtPct(x.testError),
        ]),
      );
      const bounds = withGeo.filter((x) => x.geometry!.bound);
      if (bounds.length) {
        r.paragraph(
          "Section 5.2, theory vs. practice: the empirical training loss against its optimum (SC: Theorem 2's " +
            "mean over all multisets, over the `--sc-batches` batches; CE, CE-fix: Theorem 1 at the measured ρ_Z). " +
            `Paper (CIFAR-10, w/ aug., 100k iterations): SC ${paperNum(PAPER_SECTION_5_2.sc.empirical)} vs ` +
            `${paperNum(PAPER_SECTION_5_2.sc.theory)}, CE ${paperNum(PAPER_SECTION_5_2.ce.empirical)} vs ` +
            `${paperNum(PAPER_SECTION_5_2.ce.theory)}.`,
        );
        r.table(
          ["Cell", "ours: empirical", "ours: optimum", "paper: empirical", "paper: optimum"],
          bounds.map((x) => {
            const l = x.cell.labels;
            const paper = l.dataset === "cifar10" && l.augment && !l.preact && l.loss !== "ce-fix"
              ? PAPER_SECTION_5_2[l.loss]
              : null;
            return [
              `#${x.cell.index} ${cellLabel(x.cell)}`,
              fmtNum(x.geometry!.bound!.empirical, 6),
              fmtNum(x.geometry!.bound!.theory, 6),
              paper ? paperNum(paper.empirical) : "—",
              paper ? paperNum(paper.theory) : "—",
            ];
          }),
        );
      }
    }
  }

  if (inp.points.length) {
    r.heading(2, "Section 5.3: time to fit (Figs. 2 and 8)");
    r.paragraph(
      "Iterations until the first evaluation at 100% training accuracy on the corrupted labels, against the " +
        "corruption p, one line per loss (mean over the seeds that were done; a red square where a seed did " +
        `not fit within the budget). The paper: ${PAPER_RANDOM_LABELS.cap} iterations, an evaluation every ` +
        `${PAPER_RANDOM_LABELS.evalEvery}; "${PAPER_RANDOM_LABELS.quotes.growth}"`,
    );
    if (inp.figures.length) {
      for (const f of inp.figures) r.figure(inp.dir, f.png ?? f.svg, `time to fit, ${f.dataset}`);
    } else {
      r.paragraph(`*(no figure: ${inp.figureError ?? "no random-label cell is done"})*`);
    }
    const limits = fitLimits(inp.points);
    if (limits.length) {
      r.table(
        ["Dataset", "Loss", "ours: fits up to p", "ours: first p not fitted", "paper: fits up to p"],
        limits.map((l) => [
          l.dataset,
          LOSS_LABELS[l.loss] ?? l.loss,
          l.fitsUpTo === null ? "—" : String(l.fitsUpTo),
          l.firstNotFitted === null ? "none (all fitted)" : String(l.firstNotFitted),
          l.paperFitsUpTo === null ? "—" : `${l.paperFitsUpTo} ("${PAPER_RANDOM_LABELS.quotes.scLimit}")`,
        ]),
      );
    }
  }

  r.heading(2, "Missing cells");
  const missing = records.filter((x) => x.state !== "done")
    .sort((a, b) =>
      STATE_ORDER.indexOf(a.state) - STATE_ORDER.indexOf(b.state) || a.cell.index - b.cell.index
    );
  if (!missing.length) r.paragraph("None: every cell of the plan is done.");
  else {
    r.paragraph(
      `${missing.length} of ${total} cells are not done and are left out of the tables and figures above ` +
        "(`deno task sweep status DIR` shows them live; submitting again resumes them).",
    );
    r.table(
      ["Index", "Id", "State", "Cell", "Step", "Note"],
      missing.map((x) => [
        String(x.cell.index),
        x.cell.id,
        x.state,
        cellLabel(x.cell),
        x.iterations ? `${x.step} / ${x.iterations}` : String(x.step),
        x.failure ?? "",
      ]),
    );
  }
  const problems = records.flatMap((x) => x.problems);
  if (problems.length) {
    r.heading(2, "Unreadable files");
    r.bullets(problems.map((p) => `\`${p}\``));
  }
  return r.render();
}
