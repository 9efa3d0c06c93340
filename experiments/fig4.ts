/**
 * Figure 4 of "Dissecting Supervised Contrastive Learning": the numerical check of Corollary 2.
 *
 * For each λ of a log-spaced sweep, minimise L_CE(Z, W; Y) + λ‖W‖²_F over free points Z in the unit
 * ball (ρ_Z = 1) and a bias-free classifier W by full-batch gradient descent with momentum on the
 * GPU, then compare (left) the mean row norm ‖w_y‖ with r_W(ρ_Z, λ) and (right) the minimised
 * objective with the Corollary 2 bound. The paper uses the toy data of Fig. 1 (K = 3, h = 2,
 * 100 points per class) and reports agreement graphically; we ask for 1e-3 relative.
 *
 * ```
 * deno task fig4 [--out DIR] [--seed S] [--json] [--lambdas 0.001,0.01,...] [--steps N] [--k K --h H]
 * ```
 *
 * Writes fig4.csv (one row per λ), fig4_curves.csv (objective at the log steps), fig4_theory.csv
 * (dense curves), fig4.svg/.png, config.json and summary.json.
 *
 * @module
 */
export type { VegaLiteSpec } from "./lib/plot.ts";
import { figureMain, runFigure } from "./lib/figure.ts";
import { hconcat, type VegaLiteSpec } from "./lib/plot.ts";
import { Progress } from "./lib/progress.ts";
import { ceBoundCorollary2 } from "../theory/mod.ts";
import { FINAL_PHASE_OPTIONS, rowNorms, trainCeToy } from "./toy/ce_toy.ts";

/** `count` values log-spaced from `lo` to `hi` (inclusive), rounded to 4 significant digits. */
export function logSpace(lo: number, hi: number, count: number): number[] {
  if (count === 1) return [lo];
  return Array.from({ length: count }, (_, i) => {
    const v = Math.exp(Math.log(lo) + (i * (Math.log(hi) - Math.log(lo))) / (count - 1));
    return Number(v.toPrecision(4));
  });
}

/** Command-line options of fig4 (besides --out, --seed, --json, --quiet). */
export const FIG4_OPTIONS = {
  lambdas: {
    type: "number[]",
    default: logSpace(1e-3, 1, 10),
    min: 1e-8,
    description: "values of λ (penalty λ‖W‖²_F), comma separated",
  },
  k: { type: "integer", default: 3, min: 2, description: "number of classes K" },
  h: { type: "integer", default: 2, min: 1, description: "dimension h of the points (≥ K−1)" },
  nPerClass: { type: "integer", default: 100, min: 1, description: "points per class" },
  rhoZ: { type: "number", default: 1, min: 1e-6, description: "radius ρ_Z of the ball of the points" },
  steps: { type: "integer", default: 1000, min: 1, description: "gradient steps per λ" },
  lrZ: { type: "number", default: 0.5, min: 0, description: "learning rate per point (Z's lr is lrZ·N)" },
  lrW: { type: "number", default: 0.5, min: 0, description: "learning rate of W" },
  lrZByRw: {
    type: "boolean",
    default: true,
    description: "divide Z's lr by min(1, r_W(λ)) (points' gradients scale with ‖W‖)",
  },
  momentum: { type: "number", default: 0.9, min: 0, max: 0.999, description: "momentum" },
  ...FINAL_PHASE_OPTIONS,
  logEvery: { type: "integer", default: 50, min: 1, description: "steps between loss readbacks" },
  tolerance: { type: "number", default: 1e-3, min: 0, description: "relative agreement required" },
} as const;

/** Parsed configuration of fig4 (see {@link FIG4_OPTIONS}). */
export interface Fig4Config {
  /** Values of λ. */
  lambdas: number[];
  /** Number of classes K. */
  k: number;
  /** Dimension h (≥ K−1). */
  h: number;
  /** Points per class. */
  nPerClass: number;
  /** Radius ρ_Z of the ball of the points. */
  rhoZ: number;
  /** Gradient steps per λ. */
  steps: number;
  /** Learning rate per point (Z's lr is lrZ·N). */
  lrZ: number;
  /** Learning rate of W. */
  lrW: number;
  /** Divide Z's lr by min(1, r_W(λ)). */
  lrZByRw: boolean;
  /** Momentum. */
  momentum: number;
  /** Fraction of steps at the end with lr × `finalLrScale`. */
  finalFraction: number;
  /** Learning-rate factor of the final phase. */
  finalLrScale: number;
  /** Steps between loss readbacks. */
  logEvery: number;
  /** Relative agreement required. */
  tolerance: number;
  /** Output folder. */
  out: string;
  /** Random seed. */
  seed: number;
  /** Print the summary as one JSON line. */
  json: boolean;
  /** No progress output. */
  quiet: boolean;
}

/** One λ of the sweep. */
export interface Fig4Row {
  /** Penalty λ. */
  lambda: number;
  /** r_W(ρ_Z, λ) of Corollary 2. */
  rW: number;
  /** Mean of ‖w_y‖ over classes at the end. */
  meanWNorm: number;
  /** Smallest ‖w_y‖. */
  minWNorm: number;
  /** Largest ‖w_y‖. */
  maxWNorm: number;
  /** Corollary 2 bound on L_CE + λ‖W‖². */
  bound: number;
  /** Minimised objective (GPU L_CE + λ‖W‖², float64 penalty). */
  objective: number;
  /** The same with L_CE recomputed in float64 from the read-back Z, W. */
  objectiveF64: number;
  /** L_CE alone (GPU). */
  ce: number;
  /** λ‖W‖²_F. */
  penalty: number;
  /** (objective − bound)/bound. */
  relGapObjective: number;
  /** (meanWNorm − r_W)/r_W. */
  relGapWNorm: number;
  /** Largest |angle between class means − simplex angle|, degrees. */
  maxAngleErrorDeg: number;
  /** Largest distance of a point from its class mean. */
  maxSpread: number;
  /** Largest angle between w_y and the class mean μ_y, degrees. */
  maxWeightMeanAngleDeg: number;
  /** Wall time of this λ, seconds. */
  seconds: number;
}

/** Summary of a fig4 run (also summary.json). */
export interface Fig4Summary {
  /** Experiment name. */
  experiment: "fig4";
  /** What the paper reports (graphically). */
  paper: { claim: string; setting: string };
  /** Our setting. */
  setting: { K: number; h: number; nPerClass: number; rhoZ: number; steps: number; optimiser: string };
  /** One row per λ. */
  rows: Fig4Row[];
  /** Largest |objective − bound|/bound. */
  maxRelGapObjective: number;
  /** Largest |mean ‖w_y‖ − r_W|/r_W. */
  maxRelGapWNorm: number;
  /** Required relative agreement. */
  tolerance: number;
  /** Both gaps within the tolerance and no objective below the bound. */
  pass: boolean;
  /** Wall time, seconds. */
  seconds: number;
  /** Files written. */
  files: string[];
}

/** The sweep: one CE toy run per λ; the rows of fig4.csv and the curves of fig4_curves.csv. */
async function sweep(cfg: Fig4Config): Promise<{ rows: Fig4Row[]; curves: Record<string, number>[] }> {
  const logSteps = Array.from(
    { length: Math.floor(cfg.steps / cfg.logEvery) + 1 },
    (_, i) => i * cfg.logEvery,
  );
  const bar = new Progress(cfg.lambdas.length * cfg.steps, { label: "fig4", quiet: cfg.quiet, unit: "step" });
  const rows: Fig4Row[] = [];
  const curves: Record<string, number>[] = [];
  for (const [i, lambda] of [...cfg.lambdas].entries()) {
    let done = 0;
    const res = await trainCeToy({
      K: cfg.k,
      h: cfg.h,
      nPerClass: cfg.nPerClass,
      lambda,
      rhoZ: cfg.rhoZ,
      steps: cfg.steps,
      lrZ: cfg.lrZ,
      lrW: cfg.lrW,
      lrZByRW: cfg.lrZByRw,
      momentum: cfg.momentum,
      finalFraction: cfg.finalFraction,
      finalLrScale: cfg.finalLrScale,
      seed: cfg.seed * 1000 + i,
      logSteps,
      onLog: (r) => {
        bar.tick(r.step - done, `λ=${lambda} obj ${r.objective.toFixed(5)}`);
        done = r.step;
      },
    });
    for (const r of res.records) {
      curves.push({
        lambda,
        step: r.step,
        ce: r.ce,
        penalty: r.penalty,
        objective: r.objective,
        bound: res.bound,
      });
    }
    const last = res.records[res.records.length - 1];
    const norms = rowNorms(res.W, cfg.h);
    const meanWNorm = norms.reduce((a, b) => a + b, 0) / norms.length;
    const g = res.geometry;
    rows.push({
      lambda,
      rW: res.rW,
      meanWNorm,
      minWNorm: Math.min(...norms),
      maxWNorm: Math.max(...norms),
      bound: res.bound,
      objective: last.objective,
      objectiveF64: last.ceF64 + last.penalty,
      ce: last.ce,
      penalty: last.penalty,
      relGapObjective: (last.objective - res.bound) / res.bound,
      relGapWNorm: (meanWNorm - res.rW) / res.rW,
      maxAngleErrorDeg: g.maxAngleErrorDeg,
      maxSpread: g.maxSpread,
      maxWeightMeanAngleDeg: Math.max(...(g.weightMeanAnglesDeg ?? [0])),
      seconds: res.seconds,
    });
  }
  bar.done();
  return { rows, curves };
}

/** The summary of a sweep (every field of summary.json but the wall time and the files). */
function fig4Summary(cfg: Fig4Config, rows: Fig4Row[]): Omit<Fig4Summary, "seconds" | "files"> {
  const maxRelGapObjective = Math.max(...rows.map((r) => Math.abs(r.relGapObjective)));
  const maxRelGapWNorm = Math.max(...rows.map((r) => Math.abs(r.relGapWNorm)));
  return {
    experiment: "fig4",
    paper: {
      claim: "the Corollary 2 bound closely matches the minimised L2-regularised CE loss, and the mean " +
        "‖w_y‖ matches r_W(ρ_Z, λ), over the λ sweep (shown graphically, no numbers given)",
      setting: "toy data of Fig. 1: K = 3, h = 2, 100 points per class, ‖z_n‖ ≤ 1, gradient descent",
    },
    setting: {
      K: cfg.k,
      h: cfg.h,
      nPerClass: cfg.nPerClass,
      rhoZ: cfg.rhoZ,
      steps: cfg.steps,
      optimiser:
        `full-batch SGD, momentum ${cfg.momentum}, lr(Z) ${cfg.lrZ}·N${
          cfg.lrZByRw ? "/min(1, r_W)" : ""
        }, lr(W) ${cfg.lrW}, ` +
        `weight decay 2λ on W, projection of Z to the ${cfg.rhoZ}-ball after each step; last ` +
        `${cfg.finalFraction * 100}% of steps at ${cfg.finalLrScale}× lr`,
    },
    rows,
    maxRelGapObjective,
    maxRelGapWNorm,
    tolerance: cfg.tolerance,
    pass: maxRelGapObjective <= cfg.tolerance && maxRelGapWNorm <= cfg.tolerance &&
      rows.every((r) => r.relGapObjective >= -1e-5),
  };
}

/** The result table on stderr. */
function printFig4(summary: Fig4Summary, cfg: Fig4Config, dir: string): void {
  console.error("   λ        r_W      mean‖w‖    rel       bound      objective  rel");
  for (const r of summary.rows) {
    console.error(
      `${r.lambda.toExponential(2).padStart(9)} ${r.rW.toFixed(6)} ${r.meanWNorm.toFixed(6)} ${
        r.relGapWNorm.toExponential(1).padStart(8)
      }  ${r.bound.toFixed(6)}  ${r.objective.toFixed(6)} ${r.relGapObjective.toExponential(1).padStart(8)}`,
    );
  }
  console.error(
    `fig4: ${summary.pass ? "PASS" : "FAIL"} (tolerance ${cfg.tolerance}) in ${
      summary.seconds.toFixed(1)
    } s → ${dir}`,
  );
}

/** Runs the λ sweep and writes the CSVs, the figure and summary.json into `cfg.out`. */
export function run(cfg: Fig4Config): Promise<Fig4Summary> {
  if (cfg.h < cfg.k - 1) {
    console.error(`fig4: warning: h=${cfg.h} < K−1=${cfg.k - 1}: the bound is not attainable`);
  }
  return runFigure(cfg, async () => {
    const { rows, curves } = await sweep(cfg);
    // Dense theory curves for the figure.
    const lo = Math.min(...cfg.lambdas), hi = Math.max(...cfg.lambdas);
    const theory = Array.from({ length: 101 }, (_, i) => {
      const lambda = Math.exp(Math.log(lo) + (i * (Math.log(hi) - Math.log(lo))) / 100);
      const c = ceBoundCorollary2(cfg.k, cfg.rhoZ, lambda);
      return { lambda, rW: c.rW, bound: c.bound };
    });
    return {
      csvs: [
        ["fig4.csv", rows as unknown as Record<string, unknown>[]],
        ["fig4_curves.csv", curves],
        ["fig4_theory.csv", theory],
      ],
      figure: { name: "fig4", spec: fig4Spec(rows, theory, cfg) },
      summary: ({ files, seconds }) => ({ ...fig4Summary(cfg, rows), seconds, files }),
      report: (summary, dir) => printFig4(summary, cfg, dir),
    };
  });
}

/** The two panels of the paper's Fig. 4: ‖w_y‖ vs r_W (left) and objective vs bound (right), log λ. */
export function fig4Spec(
  rows: readonly Fig4Row[],
  theory: readonly { lambda: number; rW: number; bound: number }[],
  cfg: Pick<Fig4Config, "k" | "h" | "nPerClass" | "steps">,
): VegaLiteSpec {
  const panel = (
    title: string,
    yTitle: string,
    thKey: "rW" | "bound",
    empKey: "meanWNorm" | "objective",
    thName: string,
    empName: string,
  ): VegaLiteSpec => {
    const x = {
      field: "lambda",
      type: "quantitative",
      scale: { type: "log" },
      title: "λ (L2 regularisation strength)",
      axis: { format: "~e" },
    };
    const color = {
      field: "series",
      type: "nominal",
      title: null,
      scale: { domain: [thName, empName], range: ["#1f77b4", "#d62728"] },
      legend: { orient: "top-right" },
    };
    return {
      title,
      width: 320,
      height: 240,
      layer: [
        {
          data: { values: theory.map((t) => ({ lambda: t.lambda, value: t[thKey], series: thName })) },
          mark: { type: "line", strokeWidth: 2 },
          encoding: { x, y: { field: "value", type: "quantitative", title: yTitle }, color },
        },
        {
          data: { values: rows.map((r) => ({ lambda: r.lambda, value: r[empKey], series: empName })) },
          mark: { type: "point", shape: "cross", size: 90, strokeWidth: 2, filled: true },
          encoding: { x, y: { field: "value", type: "quantitative", title: yTitle }, color },
        },
      ],
    };
  };
  return hconcat([
    panel("Weight norm", "‖w_y‖", "rW", "meanWNorm", "theory r_W(ρ_Z, λ)", "observed mean ‖w_y‖"),
    panel("Regularised CE loss", "L_CE + λ‖W‖²", "bound", "objective", "Corollary 2 bound", "empirical loss"),
  ], {
    title:
      `Fig. 4: Corollary 2 vs gradient descent (K=${cfg.k}, h=${cfg.h}, ${cfg.nPerClass}/class, ${cfg.steps} steps)`,
  });
}

if (import.meta.main) {
  await figureMain(FIG4_OPTIONS, {
    name: "fig4",
    description: "Figure 4: minimised L_CE + λ‖W‖² and mean ‖w_y‖ against Corollary 2 over a λ sweep.",
  }, run);
}
