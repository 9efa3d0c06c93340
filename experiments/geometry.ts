/**
 * Section 5.2 of "Dissecting Supervised Contrastive Learning": the geometry of a trained model
 * (Fig. 7) and its losses against the optima of Section 3.
 *
 * ```
 * deno task geometry --checkpoint runs/train-sc-cifar10-…/checkpoint.safetensors [--data DIR] [--out DIR] [--json]
 * ```
 *
 * From a checkpoint of `deno task train`, on the run's training set under the run's training
 * transform (augmentation if the run used it, FORMULAS.md "Protocol facts"), with the labels the
 * run trained on:
 *
 * - Fig. 7 statistics: γ across class means (pairs i ≠ j), γ across the classifier weights (CE,
 *   CE-fix; for SC the linear probe when the checkpoint has one) and γ of every training
 *   representation to its class mean, as histograms with the simplex values as red rules
 *   (γ_simplex(K) = 1 − arccos(−1/(K−1))/π for the first two, 1 for the third) and summary
 *   statistics. Representations are the encoder outputs u (CE, CE-fix) or z = ρ·u/‖u‖ (SC, the
 *   points the loss sees).
 * - SC runs: the empirical SC loss over `--sc-batches` (1000) batches of b i.i.d. indices (each a sum
 *   over anchors, on z with ρ² = 1/τ) on the GPU, against Theorem 2 (mean over all multisets) and
 *   its i.i.d. expectation (the fair comparison); paper: 824.487 vs 824.731. With augmentation each
 *   batch is a fresh forward pass of freshly augmented images (`--sc-source images`).
 * - CE and CE-fix runs: the empirical training cross-entropy against Theorem 1 with the measured
 *   ρ_Z = max ‖z_n‖ and ‖W‖_F; paper: 7.64e-5 (theory) vs 2.48e-4 (empirical).
 *
 * Writes geometry.csv (every γ value: per pair and per sample), sc_batches.csv (SC), summary.json,
 * config.json, geometry.svg/png and (SC) sc_batches.svg/png to --out.
 * @module
 */
import { join } from "node:path";
import { initDevice } from "../engine/gpu.ts";
import type { Tensor } from "../engine/tensor.ts";
import {
  CliError,
  defaultConfig,
  type ExperimentConfig,
  parseExperimentArgs,
  runDir,
  saveConfig,
} from "./lib/cli.ts";
import { writeCsv } from "../train/csv.ts";
import { histogram, saveFigure } from "./lib/plot.ts";
import { Progress } from "./lib/progress.ts";
import { printJsonLine, writeSummary } from "./lib/summary.ts";
import { PAPER_SECTION_5_2 } from "./paper.ts";
import { loadCheckpoint } from "./section5/checkpoint.ts";
import { GpuDataset } from "../train/data_gpu.ts";
import { extractFeatures } from "../train/evaluate.ts";
import { prepareData } from "./section5/trainer.ts";
import type { TrainConfig } from "./section5/config.ts";
import {
  geometryCsvRows,
  geometryFigure,
  type GeometryResult,
  geometryStats,
  type GeometrySummary,
  linearTrainError,
  projectRows,
  summarizeGeometry,
} from "./section5/geometry_stats.ts";
import {
  type CeBoundCheck,
  ceBoundCheck,
  featureSource,
  scBatchLosses,
  type ScBatchSource,
  type ScBoundCheck,
  scBoundCheck,
} from "./section5/bounds_check.ts";

/** Command-line options of `deno task geometry` (besides --out, --seed, --json, --quiet). */
export const GEOMETRY_OPTIONS = {
  checkpoint: {
    type: "string",
    default: "",
    description: "checkpoint.safetensors of a `deno task train` run (or the run folder holding it)",
    metavar: "PATH",
  },
  data: { type: "string", default: "", description: "dataset folder (default: the run's)", metavar: "PATH" },
  augment: {
    type: "string",
    default: "auto",
    choices: ["auto", "on", "off"],
    description: "transform of the training images (auto: the run's training transform)",
  },
  scBatches: {
    type: "integer",
    default: 1000,
    min: 1,
    description: "SC runs: training batches of the loss estimate",
  },
  scBatch: {
    type: "integer",
    default: 0,
    min: 0,
    description: "SC runs: batch size b (0: the run's --batch)",
  },
  scSource: {
    type: "string",
    default: "auto",
    choices: ["auto", "features", "images"],
    description: "SC batches from the extracted features, or fresh forward passes of (augmented) images " +
      "(auto: images when augmenting)",
  },
  evalBatch: { type: "integer", default: 0, min: 0, description: "feature extraction batch (0: the run's)" },
  bins: { type: "integer", default: 40, min: 5, description: "histogram bins" },
} as const;

/** Parsed configuration of `deno task geometry`. */
export type GeometryConfig = ExperimentConfig<typeof GEOMETRY_OPTIONS>;

/** The CLI metadata. */
export const GEOMETRY_META = {
  name: "geometry",
  description: "Section 5.2 / Fig. 7: geometry statistics (γ across class means, across weights, to class " +
    "means) of a trained checkpoint, and its SC / CE loss against Theorems 2 / 1.",
};

/** Defaults of every option (with out = runs/geometry). */
export const defaultGeometryConfig: Readonly<GeometryConfig> = Object.freeze(
  defaultConfig(GEOMETRY_OPTIONS, join("runs", "geometry")),
);

/** summary.json of `deno task geometry`. */
export interface GeometryReport {
  /** The checkpoint read. */
  checkpoint: string;
  /** Its training step. */
  step: number;
  /** The run's loss. */
  loss: string;
  /** The run's dataset. */
  dataset: string;
  /** Training representations N. */
  n: number;
  /** Classes K. */
  numClasses: number;
  /** Feature dimension. */
  dim: number;
  /** Whether the training transform (augmentation) was applied. */
  augment: boolean;
  /** Which vectors the statistics are computed on. */
  representation: string;
  /** Where the weights of the middle panel come from. */
  weightsSource: "classifier" | "simplex classifier" | "probe" | null;
  /** Training error of the head (classifier or probe) on these images, w.r.t. the labels trained on. */
  trainError: number | null;
  /** Whether every class has the same number of training images. */
  balanced: boolean;
  /** The Fig. 7 statistics. */
  geometry: GeometrySummary;
  /** CE / CE-fix: Theorem 1. */
  ce: CeBoundCheck | null;
  /** SC: Theorem 2. */
  sc: ScBoundCheck | null;
  /** The paper's numbers (CIFAR-10, ResNet-18, 100k iterations, with augmentation). */
  paper: { sc: { theory: number; empirical: number }; ce: { theory: number; empirical: number } };
  /** The run's config. */
  runConfig: TrainConfig;
  /** Files written. */
  paths: Record<string, string>;
}

/** The paper's Section 5.2 values (theory and empirical loss after 100k iterations; from paper.ts). */
export const PAPER_5_2 = {
  sc: { theory: PAPER_SECTION_5_2.sc.theory, empirical: PAPER_SECTION_5_2.sc.empirical },
  ce: { theory: PAPER_SECTION_5_2.ce.theory, empirical: PAPER_SECTION_5_2.ce.empirical },
} as const;

function checkpointPath(p: string): string {
  if (!p) throw new CliError("--checkpoint PATH is required (a checkpoint.safetensors of `deno task train`)");
  try {
    if (Deno.statSync(p).isDirectory) return join(p, "checkpoint.safetensors");
  } catch {
    throw new CliError(`--checkpoint: ${p} does not exist`);
  }
  return p;
}

/**
 * Computes the statistics of `cfg.checkpoint` and writes them to `cfg.out` (see the module doc).
 * Returns the summary.
 */
export async function run(cfg: GeometryConfig): Promise<GeometryReport> {
  const ckptPath = checkpointPath(cfg.checkpoint);
  await initDevice();
  const ck = await loadCheckpoint(ckptPath);
  const runConfig: TrainConfig = { ...ck.config, ...(cfg.data ? { data: cfg.data } : {}) };
  const owned: { dispose(): void }[] = [ck.model];
  if (ck.classifier) owned.push(ck.classifier);
  if (ck.probe) owned.push(ck.probe);
  try {
    const dir = await runDir(cfg.out);
    await saveConfig(dir, cfg);
    const prepared = await prepareData(runConfig);
    if (prepared.train.n !== ck.meta.data.nTrain) {
      throw new Error(
        `${ckptPath}: the run trained on ${ck.meta.data.nTrain} images, the data now give ${prepared.train.n}`,
      );
    }
    const trainData = GpuDataset.upload(prepared.train, { labels: prepared.labels, stats: prepared.stats });
    owned.push(trainData);
    const K = trainData.numClasses;
    const augment = cfg.augment === "auto" ? runConfig.augment : cfg.augment === "on";
    const batchSize = cfg.evalBatch || runConfig.evalBatch;
    const log = (s: string) => {
      if (!cfg.quiet) console.error(s);
    };
    log(
      `geometry: ${ckptPath} (${runConfig.loss}, step ${ck.step}), ${trainData.n} training images` +
        (augment ? " under the training transform" : ""),
    );
    const fs = await extractFeatures(ck.model, trainData, { augment, batchSize, seed: cfg.seed });
    const dim = fs.dim;
    const isSc = runConfig.loss === "sc";
    const radius = 1 / Math.sqrt(runConfig.tau);
    const counts = new Int32Array(K);
    for (const y of fs.labels) counts[y]++;
    const balanced = counts.every((c) => c === counts[0]);

    // --- weights of the middle panel
    const head = ck.classifier ?? ck.probe;
    const weightsSource: GeometryReport["weightsSource"] = ck.classifier
      ? (runConfig.loss === "ce-fix" ? "simplex classifier" : "classifier")
      : ck.probe
      ? "probe"
      : null;
    const weights = head ? await (head.weight as Tensor).toArray() as Float32Array : null;

    // --- Fig. 7 statistics
    const reps = isSc ? projectRows(fs.features, dim, radius) : fs.features;
    const g: GeometryResult = geometryStats({
      features: reps,
      dim,
      labels: fs.labels,
      numClasses: K,
      weights,
    });
    const geometry = summarizeGeometry(g);
    // The head acts on the encoder outputs: z = ρ·u/‖u‖ for SC (what the probe is trained on), u otherwise.
    const trainError = weights ? linearTrainError(reps, dim, weights, fs.labels) : null;

    // --- Theorem 1 (CE, CE-fix)
    const ce = !isSc && weights ? ceBoundCheck(fs.features, dim, weights, fs.labels, balanced) : null;

    // --- Theorem 2 (SC)
    let sc: ScBoundCheck | null = null;
    const paths: Record<string, string> = {};
    if (isSc) {
      const b = cfg.scBatch || runConfig.batch;
      const fromImages = cfg.scSource === "images" || (cfg.scSource === "auto" && augment);
      const source: ScBatchSource = fromImages
        ? { kind: "images", model: ck.model, data: trainData, radius, augment }
        : featureSource(fs.features, dim, fs.labels, radius);
      if (source.kind === "features") owned.push(source.z, source.labels);
      const progress = new Progress(cfg.scBatches, { label: "SC batches", quiet: cfg.quiet, unit: "batch" });
      const r = await scBatchLosses(source, {
        batches: cfg.scBatches,
        batchSize: b,
        labels: fs.labels,
        numClasses: K,
        rho2: 1 / runConfig.tau,
        seed: cfg.seed + 1,
        onProgress: () => progress.tick(1),
      });
      progress.done();
      sc = scBoundCheck(r, { N: trainData.n, K, b, rho2: 1 / runConfig.tau, balanced });
      paths.scBatchesCsv = join(dir, "sc_batches.csv");
      await writeCsv(
        paths.scBatchesCsv,
        Array.from(r.losses, (l, t) => ({
          batch: t,
          loss: l,
          simplex_loss: r.simplexLosses[t],
          gap: l - r.simplexLosses[t],
          anchors_with_positives: r.anchorsWithPositives[t],
        })),
      );
      const marked = [...r.losses, sc.boundIidExpectation, sc.boundMultisetMean];
      const lo = Math.min(...marked), hi = Math.max(...marked);
      const pad = 0.05 * (hi - lo || 1);
      const fig = await saveFigure(
        dir,
        "sc_batches",
        histogram({
          values: r.losses,
          domain: [lo - pad, hi + pad],
          title: "SC loss of training batches vs Theorem 2",
          subtitle: `${r.losses.length} batches of b = ${b} i.i.d. indices (sum over anchors), ρ² = ${
            1 / runConfig.tau
          }`,
          bins: cfg.bins,
          markers: [
            { value: sc.boundIidExpectation, label: `i.i.d. simplex ${sc.boundIidExpectation.toFixed(3)}` },
            { value: sc.boundMultisetMean, label: `Thm 2 ${sc.boundMultisetMean.toFixed(3)}`, color: "#b00" },
            { value: sc.empirical, label: `mean ${sc.empirical.toFixed(3)}`, color: "#333" },
          ],
          xTitle: "batch loss ℓ_SC",
          yTitle: "batches",
          width: 420,
        }),
      );
      paths.scBatchesSvg = fig.svg;
      if (fig.png) paths.scBatchesPng = fig.png;
    }

    // --- files
    paths.geometryCsv = join(dir, "geometry.csv");
    await writeCsv(paths.geometryCsv, geometryCsvRows(g, fs.labels));
    const fig = await saveFigure(
      dir,
      "geometry",
      geometryFigure(g, {
        title: `Fig. 7 geometry: ${runConfig.loss.toUpperCase()} on ${runConfig.dataset}, step ${ck.step}` +
          (augment ? " (training transform)" : ""),
        weightsLabel: weightsSource === "probe" ? "probe weights" : "classifier weights",
        bins: cfg.bins,
      }),
    );
    paths.geometrySvg = fig.svg;
    if (fig.png) paths.geometryPng = fig.png;
    paths.summary = join(dir, "summary.json");
    const report: GeometryReport = {
      checkpoint: ckptPath,
      step: ck.step,
      loss: runConfig.loss,
      dataset: runConfig.dataset,
      n: fs.n,
      numClasses: K,
      dim,
      augment,
      representation: isSc ? `z = ρ·u/‖u‖ with ρ = 1/√τ = ${radius}` : "u (encoder output)",
      weightsSource,
      trainError,
      balanced,
      geometry,
      ce,
      sc,
      paper: PAPER_5_2,
      runConfig,
      paths,
    };
    await writeSummary(dir, report);
    log(describe(report));
    return report;
  } finally {
    for (const o of owned.reverse()) o.dispose();
  }
}

function f(x: number, d = 4): string {
  return Number.isFinite(x) ? x.toFixed(d) : String(x);
}

/** A few human-readable lines of a report. */
export function describe(r: GeometryReport): string {
  const g = r.geometry;
  const lines = [
    `γ across class means: mean ${f(g.acrossMeans.mean)} (median ${f(g.acrossMeans.median)}), simplex ${
      f(g.simplexGamma)
    }`,
  ];
  if (g.acrossWeights) {
    lines.push(
      `γ across ${r.weightsSource}: mean ${f(g.acrossWeights.mean)} (median ${f(g.acrossWeights.median)})`,
    );
  }
  lines.push(`γ to class means: mean ${f(g.toClassMeans.mean)}, min ${f(g.toClassMeans.min)} (collapse: 1)`);
  if (r.trainError !== null) {
    lines.push(`training error of the ${r.weightsSource}: ${f(100 * r.trainError, 2)}%`);
  }
  if (r.ce) {
    lines.push(
      `CE: empirical ${r.ce.empirical.toExponential(3)} vs Theorem 1 ${r.ce.bound.toExponential(3)} ` +
        `(ρ_Z ${f(r.ce.rhoZ)}, ‖W‖_F ${f(r.ce.frobW)}); paper ${
          PAPER_5_2.ce.empirical.toExponential(2)
        } vs ` +
        PAPER_5_2.ce.theory.toExponential(2),
    );
  }
  if (r.sc) {
    lines.push(
      `SC: empirical ${f(r.sc.empirical, 3)} ± ${
        f(r.sc.empiricalStdErr, 3)
      } over ${r.sc.batches} batches vs ` +
        `i.i.d. simplex ${f(r.sc.boundIidExpectation, 3)}, Theorem 2 ${f(r.sc.boundMultisetMean, 3)}; ` +
        `paper ${PAPER_5_2.sc.empirical} vs ${PAPER_5_2.sc.theory}`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const cfg = parseExperimentArgs(Deno.args, GEOMETRY_OPTIONS, GEOMETRY_META);
  try {
    const report = await run(cfg);
    if (cfg.json) printJsonLine(report);
  } catch (e) {
    if (e instanceof CliError) {
      console.error(`error: ${e.message}\nRun with --help for usage.`);
      Deno.exit(2);
    }
    throw e;
  }
}
