/**
 * Figure 1 of "Dissecting Supervised Contrastive Learning": the three-class toy problem in 2D
 * (100 points per class), optimised directly over the points on the GPU.
 *
 * - Top row (SC): points drawn uniformly on the circle, minimising the supervised contrastive loss
 *   of the full batch of all N = 300 points, projected back to the circle after every step. The
 *   paper's values fit ρ_Z² = 5 (τ = 0.2) with the loss reported as a mean per anchor
 *   (`supConLoss(z)/N`): at the simplex log(99 + 200·e^{−7.5}) = 4.596 (see FORMULAS.md).
 * - Bottom row (CE): points drawn uniformly in the unit disc, minimising L_CE(Z, W) + λ‖W‖²_F over
 *   Z (projected to the disc) and W. By default λ is chosen so that the Corollary 2 bound (ρ_Z = 1,
 *   K = 3) equals the paper's final value 0.265.
 *
 * ```
 * deno task fig1 [--out DIR] [--seed S] [--json] [--lambda L] [--sc-steps N] [--ce-steps N]
 * ```
 *
 * Writes fig1_sc.csv / fig1_ce.csv (loss curves), fig1_snapshots.csv (the plotted points and
 * weights), fig1.svg/.png (2 × 6 panels as in the paper), config.json and summary.json.
 *
 * @module
 */
export type { VegaLiteSpec } from "./lib/plot.ts";
import { figureMain, runFigure } from "./lib/figure.ts";
import { grid, type VegaLiteSpec } from "./lib/plot.ts";
import { Progress } from "./lib/progress.ts";
import { scAnchorValueAtSimplex } from "../theory/mod.ts";
import { PAPER_FIG1 } from "./paper.ts";
import { type CeToyRecord, type ToyGeometry, toyGeometry, trainCeToy } from "./toy/ce_toy.ts";
import { FIG1_OPTIONS, lambdaForBound, type ScToyResult, trainScToy } from "./fig1_core.ts";

export { FIG1_OPTIONS, lambdaForBound };

/** Parsed configuration of fig1 (see {@link FIG1_OPTIONS}). */
export interface Fig1Config {
  /** Points per class (3 classes). */
  nPerClass: number;
  /** ρ_Z² = 1/τ of the SC circle. */
  rho2: number;
  /** SC gradient steps. */
  scSteps: number;
  /** SC learning rate (on the summed loss). */
  scLr: number;
  /** SC snapshot steps (the final step is added). */
  scSnapshots: number[];
  /** CE gradient steps. */
  ceSteps: number;
  /** CE learning rate per point (Z's lr is ·N). */
  ceLrZ: number;
  /** CE learning rate of W. */
  ceLrW: number;
  /** CE snapshot steps (the final step is added). */
  ceSnapshots: number[];
  /** CE penalty λ (0: the λ whose Corollary 2 bound equals `ceTarget`). */
  lambda: number;
  /** Target final CE value used when `lambda` is 0. */
  ceTarget: number;
  /** Momentum of both runs. */
  momentum: number;
  /** Fraction of steps at the end with lr × `finalLrScale`. */
  finalFraction: number;
  /** Learning-rate factor of the final phase. */
  finalLrScale: number;
  /** Steps between loss readbacks. */
  logEvery: number;
  /** Output folder. */
  out: string;
  /** Random seed. */
  seed: number;
  /** Print the summary as one JSON line. */
  json: boolean;
  /** No progress output. */
  quiet: boolean;
}

/** A plotted state: the step, its loss, the points (and CE weights). */
export interface Fig1Snapshot {
  /** Steps done. */
  step: number;
  /** Loss shown above the panel (SC: mean per anchor; CE: L_CE + λ‖W‖²). */
  loss: number;
  /** Points, flat [N·2]. */
  Z: Float32Array;
  /** CE weights, flat [3·2]. */
  W?: Float32Array;
}

/** Summary of a fig1 run (also summary.json; snapshots' points are in fig1_snapshots.csv). */
export interface Fig1Summary {
  /** Experiment name. */
  experiment: "fig1";
  /** The paper's panel values (Fig. 1). */
  paper: { sc: readonly number[]; ce: readonly number[] };
  /** The SC row. */
  sc: {
    rho2: number;
    steps: number;
    snapshots: { step: number; loss: number }[];
    final: number;
    /** Theorem 2 value for the full batch of all points, per anchor: log(n−1 + (N−n)e^{−Kρ²/(K−1)}). */
    simplexValue: number;
    gap: number;
    geometry: ToyGeometry;
  };
  /** The CE row. */
  ce: {
    lambda: number;
    lambdaChoice: string;
    steps: number;
    snapshots: { step: number; objective: number; ce: number }[];
    final: { objective: number; ce: number; ceF64: number; penalty: number };
    corollary2: { bound: number; rW: number; relGap: number; meanWNorm: number; relGapWNorm: number };
    geometry: ToyGeometry;
  };
  /** Wall times, seconds. */
  seconds: { sc: number; ce: number; total: number };
  /** Files written. */
  files: string[];
}

function snapshotSteps(list: readonly number[], steps: number): number[] {
  return [...new Set([...list.filter((s) => s < steps), steps])].sort((a, b) => a - b);
}

function gridSteps(every: number, steps: number): number[] {
  return Array.from({ length: Math.floor(steps / every) + 1 }, (_, i) => i * every);
}

/**
 * Minimises the SC loss of the full batch of all points on the circle of radius √rho2 (Z projected
 * back after every step; `trainScToy` of `fig1_core.ts`). Returns the loss curve (mean per anchor) and
 * snapshots.
 */
async function trainSc(cfg: Fig1Config, bar: Progress): Promise<ScToyResult> {
  let shown = 0;
  return await trainScToy({
    nPerClass: cfg.nPerClass,
    rho2: cfg.rho2,
    steps: cfg.scSteps,
    lr: cfg.scLr,
    momentum: cfg.momentum,
    finalFraction: cfg.finalFraction,
    finalLrScale: cfg.finalLrScale,
    seed: cfg.seed * 7919 + 1,
    logSteps: gridSteps(cfg.logEvery, cfg.scSteps),
    snapshotSteps: snapshotSteps(cfg.scSnapshots, cfg.scSteps),
    onLog: ({ step, loss }) => {
      bar.tick(step - shown, `SC ${loss.toFixed(4)}`);
      shown = step;
    },
  });
}

/** Rows of fig1_snapshots.csv: the plotted points (and CE weights) of every panel. */
function snapshotRows(
  sc: { snapshots: Fig1Snapshot[]; labels: Int32Array },
  ce: { snapshots: Fig1Snapshot[]; labels: Int32Array },
  K: number,
): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  const addRows = (method: string, snaps: Fig1Snapshot[], labels: Int32Array) => {
    snaps.forEach((s, panel) => {
      const base = { method, panel, step: s.step, loss: s.loss };
      for (let i = 0; i < labels.length; i++) {
        rows.push({ ...base, kind: "point", class: labels[i], x: s.Z[2 * i], y: s.Z[2 * i + 1] });
      }
      if (s.W) {
        for (let k = 0; k < K; k++) {
          rows.push({ ...base, kind: "weight", class: k, x: s.W[2 * k], y: s.W[2 * k + 1] });
        }
      }
    });
  };
  addRows("SC", sc.snapshots, sc.labels);
  addRows("CE", ce.snapshots, ce.labels);
  return rows;
}

/** The λ of the CE row and how it was chosen. */
function chooseLambda(cfg: Fig1Config, K: number): { lambda: number; lambdaChoice: string } {
  if (cfg.lambda > 0) {
    return { lambda: cfg.lambda, lambdaChoice: `given on the command line (--lambda ${cfg.lambda})` };
  }
  return {
    lambda: lambdaForBound(K, 1, cfg.ceTarget),
    lambdaChoice:
      `the λ whose Corollary 2 bound log(1 + 2e^{−1.5 r_W}) + 3λ r_W² (K = 3, ρ_Z = 1) equals the paper's ` +
      `final value ${cfg.ceTarget}: the optimum of L_CE + λ‖W‖² is then ${cfg.ceTarget}`,
  };
}

/** The CE row: L_CE + λ‖W‖² over points in the unit disc and W (`trainCeToy`). */
async function trainCe(cfg: Fig1Config, lambda: number, snapSteps: Set<number>, bar: Progress) {
  let shown = 0;
  return await trainCeToy({
    K: 3,
    h: 2,
    nPerClass: cfg.nPerClass,
    lambda,
    rhoZ: 1,
    steps: cfg.ceSteps,
    lrZ: cfg.ceLrZ,
    lrW: cfg.ceLrW,
    momentum: cfg.momentum,
    finalFraction: cfg.finalFraction,
    finalLrScale: cfg.finalLrScale,
    seed: cfg.seed * 7919 + 2,
    logSteps: [...new Set([...gridSteps(cfg.logEvery, cfg.ceSteps), ...snapSteps])],
    keepSnapshots: true,
    onLog: (r) => {
      bar.tick(r.step - shown, `CE ${r.objective.toFixed(4)}`);
      shown = r.step;
    },
  });
}

/** The paper's values next to ours on stderr. */
function printFig1(s: Fig1Summary, dir: string): void {
  const f = (v: number) => v.toFixed(3);
  console.error(`SC ours : ${s.sc.snapshots.map((x) => f(x.loss)).join(" → ")}`);
  console.error(`SC paper: ${PAPER_FIG1.sc.map(f).join(" → ")}   (simplex ${s.sc.simplexValue.toFixed(6)})`);
  console.error(`CE ours : ${s.ce.snapshots.map((x) => f(x.objective)).join(" → ")}`);
  console.error(
    `CE paper: ${PAPER_FIG1.ce.map(f).join(" → ")}   (λ = ${s.ce.lambda.toPrecision(6)}, bound ${
      s.ce.corollary2.bound.toFixed(6)
    })`,
  );
  console.error(`fig1 done in ${s.seconds.total.toFixed(1)} s → ${dir}`);
}

/** Runs both rows of Fig. 1 and writes CSVs, the figure and summary.json into `cfg.out`. */
export function run(cfg: Fig1Config): Promise<Fig1Summary> {
  return runFigure(cfg, async () => {
    const K = 3, h = 2, n = cfg.nPerClass, N = K * n;
    const bar = new Progress(cfg.scSteps + cfg.ceSteps, { label: "fig1", quiet: cfg.quiet, unit: "step" });
    const sc = await trainSc(cfg, bar);
    const simplexValue = scAnchorValueAtSimplex(n, N, K, cfg.rho2);
    const scFinal = sc.records[sc.records.length - 1].loss;
    const { lambda, lambdaChoice } = chooseLambda(cfg, K);
    const ceSnapSet = new Set(snapshotSteps(cfg.ceSnapshots, cfg.ceSteps));
    const ce = await trainCe(cfg, lambda, ceSnapSet, bar);
    bar.done();
    const ceRecords = ce.records.filter((r) => ceSnapSet.has(r.step));
    const ceSnaps: Fig1Snapshot[] = ceRecords.map((r) => ({
      step: r.step,
      loss: r.objective,
      Z: r.Z!,
      W: r.W!,
    }));
    const ceLast: CeToyRecord = ce.records[ce.records.length - 1];
    const wNorms = ce.geometry.weightNorms ?? [];
    const meanWNorm = wNorms.reduce((a, b) => a + b, 0) / wNorms.length;
    const ceRows = ce.records.map((r) => ({
      step: r.step,
      ce: r.ce,
      ceF64: r.ceF64,
      penalty: r.penalty,
      objective: r.objective,
      meanWNorm: r.meanWNorm,
      bound: ce.bound,
    }));
    return {
      csvs: [
        ["fig1_sc.csv", sc.records.map((r) => ({ ...r, simplexValue }))],
        ["fig1_ce.csv", ceRows],
        ["fig1_snapshots.csv", snapshotRows(sc, { snapshots: ceSnaps, labels: ce.labels }, K)],
      ],
      figure: { name: "fig1", spec: fig1Spec(sc.snapshots, sc.labels, ceSnaps, ce.labels, cfg, lambda) },
      summary: ({ files, seconds }): Fig1Summary => ({
        experiment: "fig1",
        paper: PAPER_FIG1,
        sc: {
          rho2: cfg.rho2,
          steps: cfg.scSteps,
          snapshots: sc.snapshots.map((s) => ({ step: s.step, loss: s.loss })),
          final: scFinal,
          simplexValue,
          gap: scFinal - simplexValue,
          geometry: toyGeometry(sc.Z, sc.labels, K, h),
        },
        ce: {
          lambda,
          lambdaChoice,
          steps: cfg.ceSteps,
          snapshots: ceRecords.map((r) => ({ step: r.step, objective: r.objective, ce: r.ce })),
          final: { objective: ceLast.objective, ce: ceLast.ce, ceF64: ceLast.ceF64, penalty: ceLast.penalty },
          corollary2: {
            bound: ce.bound,
            rW: ce.rW,
            relGap: (ceLast.objective - ce.bound) / ce.bound,
            meanWNorm,
            relGapWNorm: (meanWNorm - ce.rW) / ce.rW,
          },
          geometry: ce.geometry,
        },
        seconds: { sc: sc.seconds, ce: ce.seconds, total: seconds },
        files,
      }),
      report: printFig1,
    };
  });
}

const CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

/** One panel: the points of a snapshot coloured by class, the circle, and (CE) the weights as grey discs with rays. */
function panelSpec(
  title: string,
  Z: Float32Array,
  labels: Int32Array,
  radius: number,
  extent: number,
  W?: Float32Array,
): VegaLiteSpec {
  const scale = { domain: [-extent, extent], nice: false, zero: false };
  const x = { field: "x", type: "quantitative", scale, axis: null };
  const y = { field: "y", type: "quantitative", scale, axis: null };
  const circle = Array.from({ length: 181 }, (_, i) => ({
    i,
    x: radius * Math.cos((2 * Math.PI * i) / 180),
    y: radius * Math.sin((2 * Math.PI * i) / 180),
  }));
  const layers: VegaLiteSpec[] = [
    {
      data: { values: circle },
      mark: { type: "line", color: "#999", strokeWidth: 1, clip: true },
      encoding: { x, y, order: { field: "i", type: "quantitative" } },
    },
  ];
  if (W) {
    const rays = [], discs = [];
    for (let k = 0; k < W.length / 2; k++) {
      const wx = W[2 * k], wy = W[2 * k + 1];
      const t = extent / Math.max(Math.abs(wx), Math.abs(wy), 1e-30); // the ray ends on the panel's edge
      rays.push({ x: 0, y: 0, x2: t * wx, y2: t * wy });
      discs.push({ x: wx, y: wy, class: k });
    }
    layers.push(
      {
        data: { values: rays },
        mark: { type: "rule", color: "#777", strokeWidth: 1, clip: true },
        encoding: { x, y, x2: { field: "x2" }, y2: { field: "y2" } },
      },
      {
        data: { values: discs },
        mark: {
          type: "circle",
          color: "#999",
          size: 140,
          opacity: 0.9,
          stroke: "#555",
          strokeWidth: 1,
          clip: true,
        },
        encoding: { x, y },
      },
    );
  }
  const pts = Array.from(labels, (c, i) => ({ x: Z[2 * i], y: Z[2 * i + 1], class: c }));
  layers.push({
    data: { values: pts },
    mark: { type: "circle", size: 14, opacity: 0.75, clip: true },
    encoding: {
      x,
      y,
      color: {
        field: "class",
        type: "nominal",
        scale: { domain: [0, 1, 2], range: CLASS_COLORS.slice(0, 3) },
        legend: null,
      },
    },
  });
  return {
    title: { text: title, fontSize: 12 },
    width: 140,
    height: 140,
    layer: layers,
    view: { stroke: null },
  };
}

/** The paper's Fig. 1 layout: top row SC, bottom row CE, left → right progress, losses in the titles. */
export function fig1Spec(
  scSnaps: readonly Fig1Snapshot[],
  scLabels: Int32Array,
  ceSnaps: readonly Fig1Snapshot[],
  ceLabels: Int32Array,
  cfg: Pick<Fig1Config, "rho2" | "nPerClass">,
  lambda: number,
): VegaLiteSpec {
  const rho = Math.sqrt(cfg.rho2);
  let ceExtent = 1.1;
  for (const s of ceSnaps) {
    for (let i = 0; i < (s.W?.length ?? 0); i++) ceExtent = Math.max(ceExtent, Math.abs(s.W![i]) * 1.2);
  }
  ceExtent = Math.min(ceExtent, 4);
  const panels = [
    ...scSnaps.map((s) => panelSpec(`SC = ${s.loss.toFixed(3)}`, s.Z, scLabels, rho, rho * 1.1)),
    ...ceSnaps.map((s) => panelSpec(`CE = ${s.loss.toFixed(3)}`, s.Z, ceLabels, 1, ceExtent, s.W)),
  ];
  const spec = grid(panels, Math.max(scSnaps.length, ceSnaps.length), { spacing: 12 });
  spec.title = {
    text: [
      `Fig. 1: 3 classes × ${cfg.nPerClass} points in 2D, optimisation progress left → right`,
      `top: SC on the circle (ρ² = ${cfg.rho2}), bottom: CE + λ‖W‖² in the unit disc (λ = ${
        lambda.toPrecision(3)
      }), grey discs: weights`,
    ],
    fontSize: 13,
  };
  return { ...spec, config: { view: { stroke: null } } };
}

if (import.meta.main) {
  await figureMain(FIG1_OPTIONS, {
    name: "fig1",
    description: "Figure 1: SC and CE toy problems (3 classes × 100 points in 2D) converging to the simplex.",
  }, run);
}
