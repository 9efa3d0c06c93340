/**
 * Stage 3 of `deno task reproduce`: Fig. 4, the λ sweep against Corollary 2 and r_W.
 * @module
 */
import { FIG4_OPTIONS, run as runFig4 } from "../../fig4.ts";
import { type Check, fmtNum } from "../../report.ts";
import { cmdBullet, figureConfig, pngOf, type StageBody, type StageFn } from "../stage.ts";

/** Stage 3: Fig. 4. */
export const fig4Stage: StageFn = async (ctx): Promise<StageBody> => {
  const s = await runFig4(figureConfig(FIG4_OPTIONS, ctx.plan.figs.fig4, ctx));
  const check: Check = {
    id: "fig4.agreement",
    section: "fig4",
    quantity: `Minimised L_CE + λ‖W‖² and mean ‖w_y‖ vs Corollary 2 over ${s.rows.length} values of λ`,
    paper: "agreement (drawn only)",
    ours: `largest relative gaps: objective ${fmtNum(s.maxRelGapObjective, 2)}, ‖w_y‖ ${
      fmtNum(s.maxRelGapWNorm, 2)
    }`,
    verdict: s.pass ? "matches" : "differs",
    reason: s.pass
      ? `within ${s.tolerance} relative, never below the bound`
      : `gaps above ${s.tolerance} relative (or an objective below the bound)`,
    required: true,
  };
  return {
    checks: [check],
    summary: s,
    render(r, reportDir) {
      r.paragraph(cmdBullet("fig4", ctx.plan.figArgs.fig4, ctx.dir, reportDir));
      r.checks([check]);
      r.table(
        ["λ", "r_W (theory)", "mean ‖w_y‖", "bound", "objective", "rel. gap"],
        s.rows.map((w) => [
          fmtNum(w.lambda, 4),
          fmtNum(w.rW, 6),
          fmtNum(w.meanWNorm, 6),
          fmtNum(w.bound, 6),
          fmtNum(w.objective, 6),
          fmtNum(w.relGapObjective, 2),
        ]),
      );
      r.figure(reportDir, pngOf(s.files), "Fig. 4");
    },
  };
};
