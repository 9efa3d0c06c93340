/**
 * Stage 7 of `deno task reproduce` (only with `--full` or `--random-labels`): time to fit against label
 * corruption (Figs. 2 and 8), through the random-label script's `run(config)`.
 * @module
 */
import {
  defaultRandomLabelsConfig,
  type RandomLabelsSummary,
  run as runRandomLabels,
} from "../../random_labels.ts";
import { type Check, fmtPct } from "../../report.ts";
import { command, LOSS_LABEL, type StageBody, type StageFn } from "../stage.ts";
import { flagsDiff } from "../plan.ts";

type Fit = RandomLabelsSummary["runs"][number]["fit"];

/** SC needs at least as many iterations as CE to fit at the largest corruption. */
function orderingCheck(ce: Fit, sc: Fit, top: number, cap: number, full: boolean): Check {
  const slower = (sc.fitted ? sc.iterations! : Infinity) >= (ce.fitted ? ce.iterations! : Infinity);
  const both = !ce.fitted && !sc.fitted;
  return {
    id: "randomLabels.sc-slower",
    section: "randomLabels",
    quantity: `At corruption p = ${top}: SC needs at least as many iterations as CE to fit`,
    paper: "yes (SC superlinear, CE about linear; Figs. 2, 8)",
    ours: both ? "neither fitted" : slower ? "yes" : "no",
    verdict: !both && slower ? "matches" : "differs",
    reason: !both && slower
      ? "same ordering"
      : both
      ? `neither fits within the cap of ${cap} iterations${full ? "" : " (tiny sweep)"}`
      : full
      ? "a different ordering"
      : "tiny sweep (a few hundred images, a cap of a few hundred iterations)",
    required: false,
  };
}

/** Stage 7: the random-label sweep. */
export const randomLabelsStage: StageFn = async (ctx): Promise<StageBody> => {
  const cfg = { ...ctx.plan.randomLabels!, out: ctx.dir };
  const s = await runRandomLabels(cfg);
  const fit = (loss: string, p: number) => s.runs.find((e) => e.loss === loss && e.p === p)?.fit ?? null;
  const ps = [...new Set(s.runs.map((e) => e.p))].sort((a, b) => a - b);
  const losses = [...new Set(s.runs.map((e) => e.loss))];
  const full = ctx.plan.mode === "full";
  const rows = ps.map((p) => [
    String(p),
    ...losses.map((l) => {
      const f = fit(l, p);
      return f
        ? (f.fitted ? String(f.iterations) : `not fitted (best train error ${fmtPct(f.bestError)}%)`)
        : "—";
    }),
  ]);
  const top = ps[ps.length - 1];
  const ce = fit("ce", top), sc = fit("sc", top);
  const checks: Check[] = ce && sc ? [orderingCheck(ce, sc, top, s.cap, full)] : [];
  return {
    checks,
    summary: s,
    render(r, reportDir) {
      r.paragraph(
        `Command: \`${
          command("random-labels", [...flagsDiff(cfg, defaultRandomLabelsConfig), "--out", cfg.out])
        }\``,
      );
      r.paragraph(
        `${
          full ? "The paper's sweep" : "A tiny sweep"
        }: time to fit (first evaluation at 100% training accuracy on the ` +
          `corrupted labels, every ${s.evalEvery} iterations, cap ${s.cap}). The paper draws these curves only.`,
      );
      r.table(["p", ...losses.map((l) => `${LOSS_LABEL[l] ?? l}: time to fit`)], rows);
      r.checks(checks);
      r.figure(reportDir, s.paths.figurePng, "Time to fit vs label corruption");
    },
  };
};
