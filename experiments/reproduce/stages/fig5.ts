/**
 * Stage 4 of `deno task reproduce`: Fig. 5, the minimisers of single batches' SC loss against the simplex.
 * @module
 */
import { FIG5_OPTIONS, run as runFig5 } from "../../fig5.ts";
import { type Check, fmtNum } from "../../report.ts";
import { cmdBullet, figureConfig, pngOf, type StageBody, type StageFn } from "../stage.ts";

/** Stage 4: Fig. 5. */
export const fig5Stage: StageFn = async (ctx): Promise<StageBody> => {
  const s = await runFig5(figureConfig(FIG5_OPTIONS, ctx.plan.figs.fig5, ctx));
  const check: Check = {
    id: "fig5.no-common-minimiser",
    section: "fig5",
    quantity: "Per-batch minimum ≤ the loss at the simplex for every label configuration, < for some",
    paper: "the minimiser depends on the batch's labels (drawn only)",
    ours: `${
      s.rows.filter((w) => w.gapToSimplex > 1e-6).length
    } of ${s.rows.length} configurations below the simplex`,
    verdict: s.pass ? "matches" : "differs",
    reason: s.pass ? "no configuration minimises every batch loss" : "a minimum above the simplex value",
    required: true,
  };
  const rows = s.rows.map((w) => {
    const balanced = w.counts.every((c) => c === w.counts[0]);
    const ok = balanced ? Math.abs(w.gapToSimplex) <= 1e-5 : w.gapToSimplex > 1e-6;
    return [
      w.config,
      fmtNum(w.minLoss, 6),
      fmtNum(w.simplexLoss, 6),
      fmtNum(w.gapToSimplex, 3),
      balanced ? "simplex (balanced batch)" : "not the simplex",
      ok ? "matches" : "differs",
    ];
  });
  return {
    checks: [check],
    summary: s,
    render(r, reportDir) {
      r.paragraph(cmdBullet("fig5", ctx.plan.figArgs.fig5, ctx.dir, reportDir));
      r.checks([check]);
      r.table(["Labels", "min ℓ_SC (ours)", "ℓ_SC at simplex", "gap", "Paper (Fig. 5)", "Verdict"], rows);
      r.figure(reportDir, pngOf(s.files), "Fig. 5");
    },
  };
};
