/**
 * Figure 6 of "Dissecting Supervised Contrastive Learning": the numerical check of Theorem 2.
 *
 * K = 3 classes with 4 points each on the unit circle S¹ (N = 12, h = 2, ρ = 1, i.e. τ = 1), batch
 * size b = 9. All |𝔅| = C(20, 9) = 167,960 multisets are enumerated and uploaded once as packed count
 * vectors; the exact MEAN SC loss over all of them, L_SC(Z; Y)/|𝔅|, and its gradient are computed on
 * the GPU every step (full batch), and Z is minimised by projected heavy-ball gradient descent
 * (Riemannian step + normalisation to the circle) from the projection of standard Gaussian samples.
 * The paper reports 12.12016 (empirical) vs 12.12015 (Theorem 2); we require the minimum within
 * `--tolerance` (1e-5) relative of the bound, evaluated in float64 on the final points. The right
 * panel is the histogram of all batch losses at the end, coloured by the label configuration of the
 * batch (class multiplicities, sorted).
 *
 * `--stochastic` runs the paper's variant instead: one batch per step, drawn uniformly from 𝔅, for
 * `--steps` steps with lr·(1 − s/T)^p, all steps inside GPU dispatches; the final mean over all of 𝔅
 * is then evaluated the same way.
 *
 * ```
 * deno task fig6 [--out DIR] [--seed S] [--json] [--steps N] [--lr X] [--momentum X] [--stochastic]
 * ```
 *
 * Writes fig6_curve.csv (mean loss per step), fig6_points.csv (final Z), fig6_batches.csv (every batch:
 * class counts, pattern, loss), fig6_patterns.csv (per label configuration), fig6.svg/.png,
 * config.json and summary.json.
 *
 * @module
 */
import { gpu } from "../engine/gpu.ts";
import { type Tensor, tensor } from "../engine/tensor.ts";
import {
  MultisetTable,
  scLossAllMultisets,
  scMultisetBatchLosses,
  ScMultisetTrainer,
  scSphereDescent,
} from "../engine/ops/sc_multiset.ts";
import type { ExperimentConfig } from "./lib/cli.ts";
import {
  balancedLabels,
  FIG6_OPTIONS,
  type Fig6Pattern,
  groupBatchLosses,
  patternOf,
  sphereStartPoints,
} from "./fig6_core.ts";

export { balancedLabels, FIG6_OPTIONS, type Fig6Pattern, patternOf };
import { figureMain, runFigure } from "./lib/figure.ts";
import { hconcat, scatterChart, type VegaLiteSpec } from "./lib/plot.ts";
import { Progress } from "./lib/progress.ts";
import { Rng } from "../data/sampler.ts";
import { scBound, scLossAllMultisetsF64 } from "../theory/mod.ts";
import { PAPER_FIG6 } from "./paper.ts";

/** Parsed configuration of fig6 (the options plus --out, --seed, --json, --quiet). */
export type Fig6Config = ExperimentConfig<typeof FIG6_OPTIONS>;

/** Summary of a fig6 run (also summary.json). */
export interface Fig6Summary {
  /** Experiment name. */
  experiment: "fig6";
  /** The paper's numbers (Fig. 6, left). */
  paper: { empirical: number; theory: number; batches: number; setting: string };
  /** The setting of this run. */
  setting: {
    K: number;
    N: number;
    b: number;
    h: number;
    rho: number;
    batches: number;
    steps: number;
    mode: "full-batch" | "stochastic";
    optimiser: string;
  };
  /** Theorem 2 bound on the mean over 𝔅. */
  theory: number;
  /** Mean loss over 𝔅 at the final points, evaluated in float64 on the CPU. */
  empirical: number;
  /** The same mean from the GPU's float32 batch losses (summed in float64). */
  empiricalGpu: number;
  /** (empirical − theory)/theory. */
  relGap: number;
  /** Required |relGap|. */
  tolerance: number;
  /** |relGap| ≤ tolerance (and not below the bound). */
  pass: boolean;
  /** Largest angle (degrees) between a point and its class mean at the end. */
  maxWithinClassAngleDeg: number;
  /** Angles (degrees) between the class means at the end (K = 3: 120° at the simplex). */
  classMeanAnglesDeg: number[];
  /** Batch losses per label configuration. */
  patterns: Fig6Pattern[];
  /** Wall time of the run. */
  seconds: number;
  /** Files written. */
  files: string[];
}

function angleDeg(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0, na = 0, nb = 0, d2 = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  na = Math.sqrt(na);
  nb = Math.sqrt(nb);
  let s2 = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] / na, y = b[i] / nb;
    d2 += (x - y) ** 2;
    s2 += (x + y) ** 2;
  }
  void dot;
  return (2 * Math.atan2(Math.sqrt(d2), Math.sqrt(s2)) * 180) / Math.PI;
}

/** The problem of a run: sizes, labels, all multisets, the bound and the schedule. */
interface Fig6Problem {
  cfg: Fig6Config;
  K: number;
  N: number;
  b: number;
  h: number;
  rho: number;
  stochastic: boolean;
  steps: number;
  lr: number;
  power: number;
  labelsHost: number[];
  bound: number;
  table: MultisetTable;
  labels: Tensor;
}

type CurvePoint = { step: number; loss: number; bound: number; gap: number };

/** Start: projection of standard Gaussian samples onto the sphere of radius ρ. */
function startPoints(p: Fig6Problem, rng: Rng): Float32Array {
  return sphereStartPoints(p.N, p.h, p.rho, rng);
}

/** Full-batch descent on the mean over 𝔅 (fused trainer); appends the per-step mean to `curve`. */
async function descendFullBatch(
  p: Fig6Problem,
  z: Tensor,
  curve: CurvePoint[],
  bar: Progress,
): Promise<void> {
  const { cfg, steps, lr, power, bound } = p;
  const trainer = new ScMultisetTrainer(z, p.labels, p.table, {
    lr: Float32Array.from({ length: steps }, (_, s) => lr * Math.pow(1 - s / steps, power)),
    steps,
    momentum: cfg.momentum,
    radius: p.rho,
  });
  for (let s = 0; s < steps; s++) {
    trainer.step();
    gpu().flush();
    if ((s + 1) % cfg.logEvery === 0 || s + 1 === steps) {
      const last = await trainer.lastLoss();
      bar.update(s + 1, `mean loss ${last.toFixed(6)} (bound ${bound.toFixed(6)})`);
    }
  }
  const log = await trainer.lossLog();
  log.forEach((loss, step) => curve.push({ step, loss, bound, gap: loss - bound }));
  trainer.dispose();
}

/** SGD on one batch per step drawn uniformly from 𝔅 (the paper's); returns the final points. */
async function descendStochastic(
  p: Fig6Problem,
  z0: Float32Array,
  rng: Rng,
  curve: CurvePoint[],
  bar: Progress,
): Promise<Tensor> {
  const { cfg, N, h, steps, bound, table } = p;
  const samples = new Uint32Array(steps);
  for (let s = 0; s < steps; s++) samples[s] = rng.randInt(table.count);
  const z3 = tensor(z0, [1, N, h]);
  const y3 = tensor(p.labelsHost, [1, N], { dtype: "i32" });
  const res = await scSphereDescent(z3, y3, table, {
    steps,
    lr: p.lr,
    power: p.power,
    momentum: cfg.momentum,
    radius: p.rho,
    samples,
    stepsPerDispatch: Math.max(1, Math.min(cfg.logEvery * 20, 5000)),
    onProgress: async (done, zNow) => {
      // The exact mean over 𝔅 at the current points, for the curve (one pass over 𝔅).
      const zr = zNow.detach();
      const view = tensor(await zr.toArray(), [N, h]);
      zr.dispose();
      const { loss } = scLossAllMultisets(view, p.labels, table);
      const mean = await loss.item();
      loss.dispose();
      view.dispose();
      curve.push({ step: done, loss: mean, bound, gap: mean - bound });
      bar.update(done, `mean loss ${mean.toFixed(6)} (bound ${bound.toFixed(6)})`);
    },
  });
  z3.dispose();
  y3.dispose();
  const z = tensor(await res.z.toArray(), [N, h]);
  res.z.dispose();
  res.lastLoss.dispose();
  return z;
}

/** Class-mean angles and the largest within-class angle of the final points. */
function finalGeometry(
  p: Fig6Problem,
  zFinal: Float64Array,
): { maxWithin: number; classMeanAnglesDeg: number[] } {
  const { K, N, h, labelsHost } = p;
  const means: number[][] = [];
  for (let y = 0; y < K; y++) {
    const m = new Array<number>(h).fill(0);
    for (let i = 0; i < N; i++) {
      if (labelsHost[i] === y) { for (let d = 0; d < h; d++) m[d] += zFinal[i * h + d]; }
    }
    means.push(m);
  }
  let maxWithin = 0;
  for (let i = 0; i < N; i++) {
    maxWithin = Math.max(maxWithin, angleDeg(zFinal.subarray(i * h, i * h + h), means[labelsHost[i]]));
  }
  const classMeanAnglesDeg: number[] = [];
  for (let a = 0; a < K; a++) {
    for (let c = a + 1; c < K; c++) classMeanAnglesDeg.push(angleDeg(means[a], means[c]));
  }
  return { maxWithin, classMeanAnglesDeg };
}

/** Every batch loss grouped by label configuration: the rows of fig6_batches.csv and fig6_patterns.csv. */
function groupBatches(p: Fig6Problem, losses: ArrayLike<number>) {
  const batchRows: Record<string, unknown>[] = [];
  const { groups, patterns } = groupBatchLosses(
    p.labelsHost,
    p.K,
    p.rho,
    p.table,
    losses,
    (t, c, cls, pattern) =>
      batchRows.push({
        batch: t,
        counts: Array.from(c).join(" "),
        ...Object.fromEntries(cls.map((v, y) => [`class${y}`, v])),
        pattern,
        loss: losses[t],
      }),
  );
  return { batchRows, groups, patterns };
}

/** The problem of a config (the schedule's defaults depend on --stochastic). */
function fig6Problem(cfg: Fig6Config): Fig6Problem {
  const K = cfg.k, n = cfg.nPerClass, N = K * n, b = cfg.b, rho = cfg.rho;
  const stochastic = cfg.stochastic;
  const labelsHost = balancedLabels(K, n);
  return {
    cfg,
    K,
    N,
    b,
    h: cfg.h,
    rho,
    stochastic,
    steps: cfg.steps > 0 ? cfg.steps : stochastic ? 100_000 : 400,
    lr: cfg.lr > 0 ? cfg.lr : stochastic ? 0.02 : 0.5,
    power: cfg.lrPower >= 0 ? cfg.lrPower : stochastic ? 5 : 0,
    labelsHost,
    bound: scBound({ N, K, b, rho2: rho * rho }).mean,
    table: MultisetTable.all(N, b),
    labels: tensor(labelsHost, [N], { dtype: "i32" }),
  };
}

/**
 * Descends, then evaluates: every batch loss on the GPU, and the exact mean in float64 on the CPU. The
 * constraint set is the sphere: the float32 points are renormalised to radius ρ in float64 (float32
 * rounding leaves |‖z‖ − ρ| ~ 1e-7, which alone moves the loss by ~1e-8 either way).
 */
async function simulate(p: Fig6Problem) {
  const { N, h, rho } = p;
  const rng = new Rng(p.cfg.seed);
  const z0 = startPoints(p, rng);
  const curve: CurvePoint[] = [];
  const bar = new Progress(p.steps, {
    label: `fig6${p.stochastic ? " (stochastic)" : ""}`,
    quiet: p.cfg.quiet,
    unit: "step",
  });
  let z = tensor(z0, [N, h]);
  if (!p.stochastic) await descendFullBatch(p, z, curve, bar);
  else {
    z.dispose();
    z = await descendStochastic(p, z0, rng, curve, bar);
  }
  bar.done();
  const zFinal = Float64Array.from(await z.toArray());
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (let d = 0; d < h; d++) s += zFinal[i * h + d] ** 2;
    const sc = rho / Math.sqrt(s);
    for (let d = 0; d < h; d++) zFinal[i * h + d] *= sc;
  }
  const lossesT = scMultisetBatchLosses(z, p.labels, p.table);
  const losses = await lossesT.toArray();
  lossesT.dispose();
  z.dispose();
  let sumGpu = 0;
  for (const v of losses) sumGpu += v;
  const empirical = scLossAllMultisetsF64({ data: zFinal, dim: h }, p.labelsHost, p.b).mean;
  return { curve, zFinal, losses, empiricalGpu: sumGpu / losses.length, empirical };
}

/** Runs the simulation and writes the CSVs, the figure and summary.json into `cfg.out`. */
export function run(cfg: Fig6Config): Promise<Fig6Summary> {
  return runFigure(cfg, async () => {
    const p = fig6Problem(cfg);
    const { K, N, b, h, rho, steps, stochastic, bound } = p;
    const { curve, zFinal, losses, empiricalGpu, empirical } = await simulate(p);
    const relGap = (empirical - bound) / bound;
    const { maxWithin, classMeanAnglesDeg } = finalGeometry(p, zFinal);
    const { batchRows, groups, patterns } = groupBatches(p, losses);
    const batches = p.table.count;
    p.labels.dispose();
    p.table.dispose();
    const pointRows = Array.from({ length: N }, (_, i) => ({
      point: i,
      label: p.labelsHost[i],
      ...Object.fromEntries(Array.from({ length: h }, (_, d) => [`z${d}`, zFinal[i * h + d]])),
      angleDeg: h >= 2 ? (Math.atan2(zFinal[i * h + 1], zFinal[i * h]) * 180) / Math.PI : 0,
    }));
    const schedule = `lr ${p.lr}·(1 − s/T)^${p.power}, momentum ${cfg.momentum}, ` +
      `tangent-projected gradient, normalisation to the sphere after each step`;
    const tolerance = cfg.tolerance;
    return {
      csvs: [
        ["fig6_curve.csv", curve],
        ["fig6_points.csv", pointRows],
        ["fig6_batches.csv", batchRows],
        ["fig6_patterns.csv", patterns as unknown as Record<string, unknown>[]],
      ],
      figure: {
        name: "fig6",
        spec: fig6Spec({
          curve,
          patterns,
          groups,
          pointRows,
          empirical,
          bound,
          tolerance,
          cfg,
          steps,
          stochastic,
        }),
      },
      summary: ({ files, seconds }): Fig6Summary => ({
        experiment: "fig6",
        paper: { ...PAPER_FIG6 },
        setting: {
          K,
          N,
          b,
          h,
          rho,
          batches,
          steps,
          mode: stochastic ? "stochastic" : "full-batch",
          optimiser: stochastic
            ? `one batch per step drawn uniformly from 𝔅, ${schedule}`
            : `full-batch gradient of the mean over 𝔅, ${schedule}`,
        },
        theory: bound,
        empirical,
        empiricalGpu,
        relGap,
        tolerance,
        pass: Math.abs(relGap) <= tolerance && relGap > -1e-12,
        maxWithinClassAngleDeg: maxWithin,
        classMeanAnglesDeg,
        patterns,
        seconds,
        files,
      }),
      report: (s, dir) =>
        console.error(
          `fig6: empirical ${empirical.toFixed(6)} (GPU ${empiricalGpu.toFixed(6)}) vs theory ${
            bound.toFixed(6)
          } (paper ${PAPER_FIG6.empirical} vs ${PAPER_FIG6.theory}): rel gap ${relGap.toExponential(2)} → ${
            s.pass ? "PASS" : "FAIL"
          } in ${s.seconds.toFixed(1)} s → ${dir}`,
        ),
    };
  });
}

/** The paper's Fig. 6: loss vs bound (left), final points (middle), batch-loss histogram (right). */
export function fig6Spec(o: {
  curve: readonly { step: number; loss: number; bound: number; gap: number }[];
  patterns: readonly Fig6Pattern[];
  groups: Map<string, { losses: number[] }>;
  pointRows: readonly Record<string, unknown>[];
  empirical: number;
  bound: number;
  tolerance: number;
  cfg: Pick<Fig6Config, "bins" | "k" | "nPerClass" | "b">;
  steps: number;
  stochastic: boolean;
}): VegaLiteSpec {
  // Left: mean loss − bound (log scale) over the steps.
  const curveRows = o.curve.filter((r) => r.gap > 0).map((r) => ({ step: r.step, gap: r.gap }));
  const left: VegaLiteSpec = {
    title: {
      text: "Mean SC loss over all batches − Theorem 2 bound",
      subtitle: [
        `empirical ${o.empirical.toFixed(5)}  vs  theory ${o.bound.toFixed(5)}`,
        `(paper: ${PAPER_FIG6.empirical} vs ${PAPER_FIG6.theory}; curve: float32 GPU log, floor ≈ 1 ulp)`,
      ],
    },
    width: 300,
    height: 240,
    layer: [{
      data: { values: curveRows },
      mark: { type: "line", strokeWidth: 1.75, point: o.stochastic },
      encoding: {
        x: {
          field: "step",
          type: "quantitative",
          title: o.stochastic ? "step (evaluated at the end)" : "step",
        },
        y: {
          field: "gap",
          type: "quantitative",
          scale: { type: "log" },
          title: "L_SC/|B| − bound",
          axis: { format: "~e" },
        },
      },
    }, {
      data: { values: [{ tol: o.tolerance * o.bound, label: `tolerance ${o.tolerance} relative` }] },
      layer: [
        {
          mark: { type: "rule", color: "red", strokeDash: [4, 3] },
          encoding: { y: { field: "tol", type: "quantitative" } },
        },
        {
          mark: { type: "text", color: "red", align: "right", dy: -6, x: 295, fontSize: 10 },
          encoding: { y: { field: "tol", type: "quantitative" }, text: { field: "label" } },
        },
      ],
    }],
  };
  // Middle: final points.
  const middle = scatterChart({
    title: "Final points on S¹",
    data: o.pointRows.map((r) => ({ ...r, class: `class ${r.label}` })),
    x: "z0",
    y: "z1",
    color: "class",
    colorTitle: "class",
    circle: true,
    width: 240,
    size: 80,
    xTitle: "z₁",
    yTitle: "z₂",
  });
  // Right: stacked histogram of all batch losses, coloured by label configuration.
  let lo = Infinity, hi = -Infinity;
  for (const grp of o.groups.values()) {
    for (const v of grp.losses) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const pad = 0.02 * (hi - lo || 1);
  lo -= pad;
  hi += pad;
  const bins = o.cfg.bins;
  const width = (hi - lo) / bins;
  const rows: Record<string, unknown>[] = [];
  const order = o.patterns.map((p) => p.pattern);
  const stacked = new Array<number>(bins).fill(0);
  for (const p of order) {
    const counts = new Array<number>(bins).fill(0);
    for (const v of o.groups.get(p)!.losses) counts[Math.min(bins - 1, Math.floor((v - lo) / width))]++;
    counts.forEach((c, i) => {
      if (c === 0) return;
      rows.push({
        pattern: p,
        x0: lo + i * width,
        x1: lo + (i + 1) * width,
        y0: stacked[i],
        y1: stacked[i] + c,
      });
      stacked[i] += c;
    });
  }
  const right: VegaLiteSpec = {
    title: {
      text: "Batch-wise SC loss over all batches",
      subtitle: `${
        o.groups.size ? [...o.groups.values()].reduce((a, g) => a + g.losses.length, 0) : 0
      } batches, coloured by label configuration`,
    },
    width: 380,
    height: 240,
    data: { values: rows },
    mark: { type: "rect", stroke: "white", strokeWidth: 0.3 },
    encoding: {
      x: {
        field: "x0",
        type: "quantitative",
        title: "SC batch-wise loss level",
        scale: { domain: [lo, hi], nice: false, zero: false },
      },
      x2: { field: "x1" },
      y: { field: "y1", type: "quantitative", title: "Nr. of batches" },
      y2: { field: "y0" },
      color: {
        field: "pattern",
        type: "nominal",
        title: "class multiplicities",
        sort: order,
        scale: { scheme: "tableau20" },
      },
    },
  };
  return hconcat([left, middle, right], {
    title: `Fig. 6: SC loss on S¹, K=${o.cfg.k}, ${o.cfg.nPerClass} points/class, b=${o.cfg.b} ` +
      `(${o.stochastic ? "stochastic" : "full-batch"}, ${o.steps} steps)`,
  });
}

if (import.meta.main) {
  await figureMain(FIG6_OPTIONS, {
    name: "fig6",
    description: "Figure 6: minimise the mean SC loss over all C(20, 9) multisets of 12 points on S¹ " +
      "and compare with the Theorem 2 bound; histogram of all batch losses by label configuration.",
  }, run);
}
