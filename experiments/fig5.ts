/**
 * Figure 5 of "Dissecting Supervised Contrastive Learning": loss-minimising point configurations of the
 * batch-wise SC loss ℓ_SC(Z; Y, B) for single batches of size b = 9 with K = 3 classes on S¹ (ρ = 1,
 * i.e. τ = 1), for the seven label configurations of the figure: class multiplicities (7, 2, 0),
 * (6, 2, 1), (5, 3, 1), (4, 4, 1), (7, 1, 1), (5, 2, 2), (3, 3, 3).
 *
 * For each configuration the 9 occurrences are free points; ℓ_SC of that one batch is minimised by
 * projected (Riemannian heavy-ball) gradient descent on the circle from `--restarts` random starts
 * (projected standard Gaussians), all configurations × restarts in parallel inside GPU dispatches; the
 * best restart (loss re-evaluated in float64) is kept. Each minimum is reported next to the batch loss
 * at the regular simplex (`scLossAtSimplex`): except for (3, 3, 3) the per-batch minimiser is NOT the
 * simplex, which is the paper's point (no simultaneous minimiser of all batch losses).
 *
 * ```
 * deno task fig5 [--out DIR] [--seed S] [--json] [--steps N] [--lr X] [--restarts R] [--configs 7-2-0,3-3-3]
 * ```
 *
 * Writes fig5_points.csv (best points per configuration), fig5_restarts.csv (every restart's loss),
 * fig5.csv (one row per configuration), fig5.svg/.png, config.json and summary.json.
 *
 * @module
 */
import { gpu } from "../engine/gpu.ts";
import { tensor } from "../engine/tensor.ts";
import { MultisetTable, scSphereDescent } from "../engine/ops/sc_multiset.ts";
import type { ExperimentConfig } from "./lib/cli.ts";
import { figureMain, runFigure } from "./lib/figure.ts";
import { grid, type VegaLiteSpec } from "./lib/plot.ts";
import { Progress } from "./lib/progress.ts";
import { Rng } from "../data/sampler.ts";
import { scLossAtSimplex, scLossOccurrencesF64 } from "../theory/mod.ts";

/** The seven label configurations of the paper's Fig. 5 (class multiplicities in a batch of 9). */
export const FIG5_CONFIGS = ["7-2-0", "6-2-1", "5-3-1", "4-4-1", "7-1-1", "5-2-2", "3-3-3"] as const;

/** Command-line options of fig5 (besides --out, --seed, --json, --quiet). */
export const FIG5_OPTIONS = {
  configs: {
    type: "string[]",
    default: FIG5_CONFIGS,
    description: "label configurations: class multiplicities joined by '-', comma separated",
  },
  rho: { type: "number", default: 1, min: 1e-3, description: "radius ρ of the circle (ρ² = 1/τ)" },
  restarts: { type: "integer", default: 16, min: 1, description: "random starts per configuration" },
  steps: { type: "integer", default: 4000, min: 1, description: "gradient steps per start" },
  lr: { type: "number", default: 0.02, min: 0, description: "base learning rate" },
  lrPower: { type: "number", default: 2, min: 0, description: "schedule lr·(1 − s/T)^p" },
  momentum: { type: "number", default: 0.9, min: 0, max: 0.999, description: "heavy-ball momentum" },
} as const;

/** Parsed configuration of fig5 (the options plus --out, --seed, --json, --quiet). */
export type Fig5Config = ExperimentConfig<typeof FIG5_OPTIONS>;

/** Result for one label configuration. */
export interface Fig5Row {
  /** e.g. "(7, 2, 0)". */
  config: string;
  /** Class multiplicities in the batch. */
  counts: number[];
  /** Smallest batch loss found (float64 evaluation of the GPU-optimised points). */
  minLoss: number;
  /** Batch loss at the regular simplex (classes collapsed to a regular K-simplex). */
  simplexLoss: number;
  /** simplexLoss − minLoss (> 0: the per-batch minimiser is not the simplex). */
  gapToSimplex: number;
  /** Restarts whose loss is within 1e-6 of the best. */
  restartsAtMin: number;
  /** Largest restart loss (spread of the local minima found). */
  maxRestartLoss: number;
  /** Angles (degrees) between the class means of the classes present. */
  classMeanAnglesDeg: number[];
  /** Largest angle (degrees) between a point and its class mean. */
  maxWithinClassAngleDeg: number;
}

/** Summary of a fig5 run (also summary.json). */
export interface Fig5Summary {
  /** Experiment name. */
  experiment: "fig5";
  /** What the paper shows (Fig. 5 has no numbers). */
  paper: { claim: string; setting: string };
  /** The setting of this run. */
  setting: { K: number; b: number; rho: number; restarts: number; steps: number; optimiser: string };
  /** One row per label configuration. */
  rows: Fig5Row[];
  /** Every minimum is ≤ the simplex value (+1e-6), and at least one configuration is strictly below. */
  pass: boolean;
  /** Wall time of the run. */
  seconds: number;
  /** Files written. */
  files: string[];
}

/** Parses "7-2-0" into [7, 2, 0]. */
export function parseConfig(s: string): number[] {
  const parts = s.split(/[-:/ ]/).filter((p) => p !== "").map((p) => Number(p));
  if (parts.length < 2 || parts.some((v) => !Number.isInteger(v) || v < 0)) {
    throw new RangeError(`fig5: bad label configuration "${s}" (expected e.g. 7-2-0)`);
  }
  if (parts.reduce((a, b) => a + b, 0) < 2) {
    throw new RangeError(`fig5: configuration "${s}" has fewer than 2 points`);
  }
  return parts;
}

function angleDeg(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const na = Math.hypot(...Array.from(a)), nb = Math.hypot(...Array.from(b));
  let d2 = 0, s2 = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] / na, y = b[i] / nb;
    d2 += (x - y) ** 2;
    s2 += (x + y) ** 2;
  }
  return (2 * Math.atan2(Math.sqrt(d2), Math.sqrt(s2)) * 180) / Math.PI;
}

/** The label configurations of a config, their number of classes K and their common batch size b. */
function parseConfigs(cfg: Fig5Config): { configs: number[][]; K: number; b: number } {
  const configs = cfg.configs.map(parseConfig);
  const K = Math.max(...configs.map((c) => c.length));
  const b = configs[0].reduce((a, v) => a + v, 0);
  for (const c of configs) {
    if (c.reduce((a, v) => a + v, 0) !== b) {
      throw new RangeError(`fig5: all configurations need the same batch size`);
    }
  }
  return { configs, K, b };
}

/**
 * Problem p = config·R + restart: b free points (one per occurrence), labels from the configuration;
 * all minimised at once on the GPU. Returns the final points, flat [C·R·b·2].
 */
async function descend(cfg: Fig5Config, labelOf: number[][], b: number): Promise<Float64Array> {
  const h = 2, R = cfg.restarts, C = labelOf.length;
  const rng = new Rng(cfg.seed);
  const z0 = new Float32Array(C * R * b * h);
  for (let i = 0; i < z0.length; i++) z0[i] = rng.normal();
  const labels = new Int32Array(C * R * b);
  for (let c = 0; c < C; c++) for (let r = 0; r < R; r++) labels.set(labelOf[c], (c * R + r) * b);
  const table = MultisetTable.fromCounts([new Array<number>(b).fill(1)], b);
  const zT = tensor(z0, [C * R, b, h]);
  const yT = tensor(labels, [C * R, b], { dtype: "i32" });
  const bar = new Progress(cfg.steps, { label: "fig5", quiet: cfg.quiet, unit: "step" });
  const res = await scSphereDescent(zT, yT, table, {
    steps: cfg.steps,
    lr: cfg.lr,
    power: cfg.lrPower,
    momentum: cfg.momentum,
    radius: cfg.rho,
    stepsPerDispatch: 500,
    onProgress: async (done) => {
      await gpu().sync();
      bar.update(done);
    },
  });
  const zAll = Float64Array.from(await res.z.toArray());
  bar.done();
  res.z.dispose();
  res.lastLoss.dispose();
  zT.dispose();
  yT.dispose();
  table.dispose();
  return zAll;
}

/** Rows of fig5.csv, fig5_restarts.csv and fig5_points.csv. */
interface Fig5Tables {
  rows: Fig5Row[];
  restartRows: Record<string, unknown>[];
  pointRows: Record<string, unknown>[];
}

/** The restarts of configuration `c`: the best one's loss, geometry and points (appended to `t`). */
function analyseConfig(
  run: {
    cfg: Fig5Config;
    configs: number[][];
    labelOf: number[][];
    zAll: Float64Array;
    K: number;
    b: number;
  },
  c: number,
  t: Fig5Tables,
): void {
  const { cfg, configs, labelOf, zAll, K, b } = run;
  const h = 2, rho = cfg.rho, R = cfg.restarts;
  const { rows, restartRows, pointRows } = t;
  const counts = configs[c];
  const name = `(${counts.join(", ")})`;
  let best = Infinity, bestR = 0, worst = -Infinity;
  const lossesR: number[] = [];
  for (let r = 0; r < R; r++) {
    const off = (c * R + r) * b * h;
    const pts = Array.from({ length: b }, (_, i) => {
      const x = zAll[off + i * h], y = zAll[off + i * h + 1];
      const n = Math.hypot(x, y) / rho;
      return [x / n, y / n];
    });
    const loss = scLossOccurrencesF64(pts, labelOf[c]).loss;
    lossesR.push(loss);
    restartRows.push({ config: name, restart: r, loss });
    if (loss < best) (best = loss), (bestR = r);
    worst = Math.max(worst, loss);
  }
  const off = (c * R + bestR) * b * h;
  // Canonical orientation for the drawing (the loss is rotation invariant): the mean of the first
  // class present points along +x.
  const first = labelOf[c][0];
  let mx = 0, my = 0;
  for (let i = 0; i < b; i++) {
    if (labelOf[c][i] === first) (mx += zAll[off + i * h]), (my += zAll[off + i * h + 1]);
  }
  const rot = -Math.atan2(my, mx);
  const pts = Array.from({ length: b }, (_, i) => {
    const x0 = zAll[off + i * h], y0 = zAll[off + i * h + 1];
    const x = Math.cos(rot) * x0 - Math.sin(rot) * y0, y = Math.sin(rot) * x0 + Math.cos(rot) * y0;
    const n = Math.hypot(x, y) / rho;
    return [x / n, y / n];
  });
  const present = counts.map((m, y) => ({ m, y })).filter((e) => e.m > 0);
  const means = present.map(({ y }) => {
    const m = [0, 0];
    pts.forEach((p, i) => {
      if (labelOf[c][i] === y) (m[0] += p[0]), (m[1] += p[1]);
    });
    return m;
  });
  const classMeanAnglesDeg: number[] = [];
  for (let a = 0; a < means.length; a++) {
    for (let e = a + 1; e < means.length; e++) classMeanAnglesDeg.push(angleDeg(means[a], means[e]));
  }
  let maxWithin = 0;
  pts.forEach((p, i) => {
    const idx = present.findIndex((e) => e.y === labelOf[c][i]);
    maxWithin = Math.max(maxWithin, angleDeg(p, means[idx]));
  });
  const simplexLoss = scLossAtSimplex(counts, rho * rho, K);
  rows.push({
    config: name,
    counts,
    minLoss: best,
    simplexLoss,
    gapToSimplex: simplexLoss - best,
    restartsAtMin: lossesR.filter((l) => l <= best + 1e-6).length,
    maxRestartLoss: worst,
    classMeanAnglesDeg,
    maxWithinClassAngleDeg: maxWithin,
  });
  const placed: number[][] = [];
  pts.forEach((p, i) => {
    const y = labelOf[c][i];
    const first = labelOf[c].indexOf(y) === i;
    const m = means[present.findIndex((e) => e.y === y)];
    // Multiplicity labels of classes at the same spot are fanned out by ±16° so both stay readable.
    let ang = Math.atan2(m[1], m[0]);
    if (first) {
      for (
        let tries = 0;
        tries < 6 &&
        placed.some((q) => Math.abs(Math.atan2(Math.sin(ang - q[0]), Math.cos(ang - q[0]))) < 0.2);
        tries++
      ) {
        ang += (tries % 2 === 0 ? 1 : -1) * 0.28 * (tries + 1);
      }
      placed.push([ang]);
    }
    pointRows.push({
      config: name,
      point: i,
      label: y,
      x: p[0],
      y: p[1],
      angleDeg: (Math.atan2(p[1], p[0]) * 180) / Math.PI,
      // Multiplicity label placed just outside the circle at the class mean direction (first point only).
      tx: first ? 1.22 * rho * Math.cos(ang) : null,
      ty: first ? 1.22 * rho * Math.sin(ang) : null,
      text: first ? String(counts[y]) : "",
    });
  });
}

/** Runs the per-batch minimisations and writes the CSVs, the figure and summary.json into `cfg.out`. */
export function run(cfg: Fig5Config): Promise<Fig5Summary> {
  return runFigure(cfg, async () => {
    const { configs, K, b } = parseConfigs(cfg);
    const rho = cfg.rho, R = cfg.restarts;
    const labelOf = configs.map((c) => c.flatMap((m, y) => new Array<number>(m).fill(y)));
    const zAll = await descend(cfg, labelOf, b);
    const t: Fig5Tables = { rows: [], restartRows: [], pointRows: [] };
    for (let c = 0; c < configs.length; c++) analyseConfig({ cfg, configs, labelOf, zAll, K, b }, c, t);
    const rows = t.rows;
    return {
      csvs: [
        [
          "fig5.csv",
          rows.map((r) => ({
            ...r,
            counts: r.counts.join("-"),
            classMeanAnglesDeg: r.classMeanAnglesDeg.map((a) => a.toFixed(4)).join(" "),
          })),
        ],
        ["fig5_restarts.csv", t.restartRows],
        ["fig5_points.csv", t.pointRows],
      ],
      figure: { name: "fig5", spec: fig5Spec(rows, t.pointRows, rho, K) },
      summary: ({ files, seconds }) => ({
        experiment: "fig5",
        paper: {
          claim:
            "the minimising configuration of a single batch's SC loss depends on its label configuration " +
            "(Fig. 5, drawn only): there is no simultaneous minimiser of all batch-wise losses",
          setting:
            "K = 3 classes on S¹, b = 9, label configurations (7,2,0) (6,2,1) (5,3,1) (4,4,1) (7,1,1) " +
            "(5,2,2) (3,3,3)",
        },
        setting: {
          K,
          b,
          rho,
          restarts: R,
          steps: cfg.steps,
          optimiser:
            `projected heavy-ball GD on the circle (tangent gradient, normalisation), lr ${cfg.lr}·` +
            `(1 − s/T)^${cfg.lrPower}, momentum ${cfg.momentum}, best of ${R} Gaussian starts`,
        },
        rows,
        pass: rows.every((r) => r.minLoss <= r.simplexLoss + 1e-6) && rows.some((r) => r.gapToSimplex > 1e-3),
        seconds,
        files,
      }),
      report: printFig5,
    };
  });
}

/** The result table on stderr. */
function printFig5(summary: Fig5Summary, dir: string): void {
  console.error("config        min ℓ_SC     simplex ℓ_SC   simplex − min   class-mean angles (°)");
  for (const r of summary.rows) {
    console.error(
      `${r.config.padEnd(12)} ${r.minLoss.toFixed(6).padStart(10)}   ${
        r.simplexLoss.toFixed(6).padStart(10)
      }   ${r.gapToSimplex.toExponential(3).padStart(11)}   ${
        r.classMeanAnglesDeg.map((a) => a.toFixed(2)).join(", ")
      }`,
    );
  }
  console.error(`fig5: ${summary.pass ? "PASS" : "FAIL"} in ${summary.seconds.toFixed(1)} s → ${dir}`);
}

const CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

/** The paper's Fig. 5: one panel per label configuration, points on the circle, multiplicities as labels. */
export function fig5Spec(
  rows: readonly Fig5Row[],
  points: readonly Record<string, unknown>[],
  rho: number,
  K: number,
): VegaLiteSpec {
  const lim = 1.45 * rho;
  const scale = { domain: [-lim, lim], nice: false, zero: false };
  const color = {
    field: "label",
    type: "nominal",
    scale: { domain: Array.from({ length: K }, (_, y) => y), range: CLASS_COLORS.slice(0, K) },
    legend: null,
  };
  const circle = Array.from({ length: 181 }, (_, i) => ({
    i,
    cx: rho * Math.cos((2 * Math.PI * i) / 180),
    cy: rho * Math.sin((2 * Math.PI * i) / 180),
  }));
  const panels = rows.map((r): VegaLiteSpec => {
    const pts = points.filter((p) => p.config === r.config);
    const x = { type: "quantitative", scale, axis: null };
    return {
      title: {
        text: r.config,
        subtitle: [`min ℓ = ${r.minLoss.toFixed(4)}`, `simplex ℓ = ${r.simplexLoss.toFixed(4)}`],
        fontSize: 14,
      },
      width: 190,
      height: 190,
      layer: [
        {
          data: { values: circle },
          mark: { type: "line", color: "#999", strokeWidth: 1 },
          encoding: {
            x: { ...x, field: "cx" },
            y: { ...x, field: "cy" },
            order: { field: "i", type: "quantitative" },
          },
        },
        {
          data: { values: pts },
          mark: { type: "circle", size: 140, opacity: 0.9, stroke: "black", strokeWidth: 0.5 },
          encoding: { x: { ...x, field: "x" }, y: { ...x, field: "y" }, color },
        },
        {
          data: { values: pts.filter((p) => p.text !== "") },
          mark: { type: "text", fontSize: 15, fontWeight: "bold" },
          encoding: {
            x: { ...x, field: "tx" },
            y: { ...x, field: "ty" },
            text: { field: "text", type: "nominal" },
            color,
          },
        },
      ],
    };
  });
  return grid(panels, 4, {
    title:
      "Fig. 5: minimisers of the batch-wise SC loss for label configurations of a batch of 9 (K = 3, S¹)",
  });
}

if (import.meta.main) {
  await figureMain(FIG5_OPTIONS, {
    name: "fig5",
    description: "Figure 5: minimisers of the SC loss of single batches (b = 9, K = 3, on S¹) for seven " +
      "label configurations, against the loss at the regular simplex.",
  }, run);
}
