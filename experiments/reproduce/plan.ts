/**
 * The command line of `deno task reproduce` and what each mode runs: the option table (the config type is
 * derived from it), the sizes of `--quick`, the default and `--full`, and {@link makePlan}, which turns a
 * parsed config into typed settings for every stage.
 * @module
 */
import { join } from "node:path";
import { CliError, type ExperimentConfig, type OptionsSpec, toFlag } from "../lib/cli.ts";
import type { Fig1Config } from "../fig1.ts";
import type { Fig4Config } from "../fig4.ts";
import type { Fig5Config } from "../fig5.ts";
import type { Fig6Config } from "../fig6.ts";
import { defaultTrainConfig, type LossName, type TrainConfig } from "../section5/config.ts";
import { defaultRandomLabelsConfig, type RandomLabelsConfig } from "../random_labels.ts";
import { PAPER_TRAINING } from "../paper.ts";
import { chooseData, type DataChoice } from "./data.ts";

/** Command-line options of `deno task reproduce` (besides --out, --seed, --json, --quiet). */
export const REPRODUCE_OPTIONS = {
  quick: { type: "boolean", default: false, description: "≤ 2-minute smoke run with tiny sizes (tests)" },
  full: {
    type: "boolean",
    default: false,
    description: "the paper's settings (ResNet-18 ×1, 100k iterations, …): only sensible on a real GPU",
  },
  data: {
    type: "string",
    optional: true,
    description: "CIFAR-10 folder (cifar-10-batches-bin) for Section 5 (default: searched, see --dataset)",
    metavar: "PATH",
  },
  dataset: {
    type: "string",
    default: "auto",
    choices: ["auto", "cifar10", "synthetic"],
    description: "Section 5 data (auto: CIFAR-10 when given or found, else the built-in synthetic set)",
  },
  section5: {
    type: "boolean",
    default: true,
    description: "run the Section 5 training, geometry and bounds check",
  },
  randomLabels: {
    type: "boolean",
    default: false,
    description: "add a tiny random-label sweep (always on with --full)",
  },
  iterations: {
    type: "integer",
    optional: true,
    min: 1,
    description: "Section 5 training iterations (default: the mode's)",
  },
  batch: {
    type: "integer",
    optional: true,
    min: 2,
    description: "Section 5 batch size (default: the mode's)",
  },
  width: {
    type: "number",
    optional: true,
    min: 0.001,
    description: "Section 5 ResNet-18 width multiplier (default: the mode's)",
  },
  trainSubset: {
    type: "integer",
    optional: true,
    min: 0,
    description: "Section 5 balanced training subset (0: all; default: the mode's)",
  },
} as const satisfies OptionsSpec;

/** Parsed configuration of `deno task reproduce`: derived from {@link REPRODUCE_OPTIONS}. */
export type ReproduceConfig = ExperimentConfig<typeof REPRODUCE_OPTIONS>;

/** The CLI metadata. */
export const REPRODUCE_META = {
  name: "reproduce",
  description: "Reproduce the paper: theory checks, Figs. 1, 4, 5, 6, a (reduced) Section 5 run with its " +
    "geometry and bounds check, optionally the random-label sweep; writes report.md with every number next " +
    "to the paper's. Exit code 1 when a check that must match fails.",
};

/** Size of the run. */
export type Mode = "quick" | "default" | "full";

/** Section 5 settings of a mode. */
export interface Section5Plan {
  /** The data. */
  data: DataChoice;
  /** Losses trained (each one run). */
  losses: LossName[];
  /** Augmentation settings run: [true] (reduced) or [true, false] (--full: both columns of Fig. 7). */
  augment: boolean[];
  /** The training config shared by the runs (loss, augment and out are set per run). */
  train: TrainConfig;
  /** Settings of the geometry / bounds check. */
  geometry: { scBatches: number; scSource: "auto" | "features" | "images"; evalBatch: number };
}

/** Options of each simulation that differ from its script's defaults (typed: the stages pass them to `run`). */
export interface FigureOverrides {
  /** Fig. 1. */
  fig1: Partial<Fig1Config>;
  /** Fig. 4. */
  fig4: Partial<Fig4Config>;
  /** Fig. 5. */
  fig5: Partial<Fig5Config>;
  /** Fig. 6. */
  fig6: Partial<Fig6Config>;
}

/** What each stage runs. */
export interface ReproducePlan {
  /** Size of the run. */
  mode: Mode;
  /** Output folder. */
  out: string;
  /** The simulations' options that differ from their defaults. */
  figs: FigureOverrides;
  /** The same as the words of `deno task figN` (without --out/--seed/--quiet), for the report. */
  figArgs: { fig1: string[]; fig4: string[]; fig5: string[]; fig6: string[] };
  /** Section 5 (null with --no-section5). */
  section5: Section5Plan | null;
  /** The random-label sweep (null unless --full or --random-labels). */
  randomLabels: RandomLabelsConfig | null;
}

/** The Section 5 sizes of each mode (before the command-line overrides). */
export const SECTION5_SIZES = {
  quick: {
    width: 0.0625,
    batch: 16,
    iterations: 3,
    trainSubset: 100,
    testSubset: 50,
    probeIterations: 5,
    logEvery: 1,
    checkpointEvery: 0,
    scBatches: 10,
  },
  default: {
    width: 0.125,
    batch: 64,
    iterations: 120,
    trainSubset: 2000,
    testSubset: 1000,
    probeIterations: 100,
    logEvery: 10,
    checkpointEvery: 0,
    scBatches: 200,
  },
  full: {
    width: 1,
    batch: PAPER_TRAINING.batch,
    iterations: PAPER_TRAINING.iterations,
    trainSubset: 0,
    testSubset: 0,
    probeIterations: PAPER_TRAINING.probeIterations,
    logEvery: 100,
    checkpointEvery: 5000,
    scBatches: 1000,
  },
} as const;

/** The reduced simulation settings of --quick (the default and --full use each script's defaults). */
export const QUICK_FIGURES: FigureOverrides = {
  fig1: { nPerClass: 20, scSteps: 200, ceSteps: 300 },
  fig4: { lambdas: [0.001, 0.03, 1], nPerClass: 20, steps: 300 },
  fig5: { restarts: 4, steps: 1000 },
  fig6: { steps: 150 },
};

/** The random-label sweep's sizes of the reduced modes (--full derives them from the Section 5 sizes). */
export const RANDOM_LABELS_SIZES = {
  quick: {
    ps: [0, 0.5],
    losses: ["ce", "sc"],
    iterations: 4,
    evalEvery: 2,
    probeIterations: 5,
    trainSubset: 50,
    batch: 16,
    width: 0.0625,
    testSubset: 100,
    evalBatch: 16,
  },
  default: {
    ps: [0, 0.25, 0.5],
    losses: ["ce", "ce-fix", "sc"],
    iterations: 120,
    evalEvery: 20,
    probeIterations: 50,
    trainSubset: 100,
    batch: 32,
    width: 0.125,
    testSubset: 100,
    evalBatch: 32,
  },
} satisfies Record<"quick" | "default", Partial<RandomLabelsConfig>>;

/** The Section 5 sizes of a config: its mode's, with the command line's overrides. */
function section5Sizes(cfg: ReproduceConfig, mode: Mode) {
  const s = SECTION5_SIZES[mode];
  return {
    ...s,
    width: cfg.width ?? s.width,
    batch: cfg.batch ?? s.batch,
    iterations: cfg.iterations ?? s.iterations,
    trainSubset: cfg.trainSubset ?? s.trainSubset,
  };
}

type Sizes = ReturnType<typeof section5Sizes>;

function planSection5(cfg: ReproduceConfig, mode: Mode, data: DataChoice, s: Sizes): Section5Plan {
  const synthetic = data.dataset === "synthetic";
  const train: TrainConfig = {
    ...defaultTrainConfig,
    dataset: data.dataset,
    data: data.path,
    width: s.width,
    batch: s.batch,
    iterations: s.iterations,
    // Synthetic: generate exactly the subset's size (prepareData subsets the generated set otherwise).
    trainSubset: synthetic ? 0 : s.trainSubset,
    testSubset: synthetic ? 0 : s.testSubset,
    syntheticN: synthetic && s.trainSubset > 0 ? s.trainSubset : defaultTrainConfig.syntheticN,
    syntheticTestN: synthetic && s.testSubset > 0
      ? Math.min(s.testSubset, 500)
      : defaultTrainConfig.syntheticTestN,
    probeIterations: s.probeIterations,
    // One batch size everywhere: evaluation, probe and feature extraction reuse the compiled kernels.
    evalBatch: s.batch,
    logEvery: Math.min(s.logEvery, s.iterations),
    checkpointEvery: s.checkpointEvery,
    seed: cfg.seed,
    quiet: cfg.quiet,
  };
  return {
    data,
    losses: ["ce", "ce-fix", "sc"],
    augment: mode === "full" ? [true, false] : [true],
    train,
    geometry: {
      scBatches: s.scBatches,
      // Reduced: the SC batches are drawn from one extraction of augmented features (cheap); --full: a fresh
      // forward pass of freshly augmented images per batch, as the paper's estimate.
      scSource: mode === "full" ? "auto" : "features",
      evalBatch: s.batch,
    },
  };
}

function planRandomLabels(cfg: ReproduceConfig, mode: Mode, data: DataChoice, s: Sizes): RandomLabelsConfig {
  const synthetic = data.dataset === "synthetic";
  const rl = mode === "full"
    ? {
      ps: [0, 0.2, 0.4, 0.6, 0.8, 1],
      losses: ["ce", "ce-fix", "sc"] as LossName[],
      iterations: PAPER_TRAINING.iterations,
      evalEvery: 500,
      probeIterations: 1000,
      trainSubset: s.trainSubset,
      batch: s.batch,
      width: s.width,
      testSubset: 1000,
      evalBatch: s.batch,
    }
    : RANDOM_LABELS_SIZES[mode];
  return {
    ...defaultRandomLabelsConfig,
    ...rl,
    ps: [...rl.ps],
    losses: [...rl.losses] as LossName[],
    dataset: data.dataset,
    data: data.path,
    trainSubset: synthetic ? 0 : rl.trainSubset,
    syntheticN: synthetic && rl.trainSubset > 0 ? rl.trainSubset : defaultRandomLabelsConfig.syntheticN,
    syntheticTestN: synthetic
      ? Math.min(rl.testSubset || 500, 500)
      : defaultRandomLabelsConfig.syntheticTestN,
    testSubset: synthetic ? 0 : rl.testSubset,
    checkpointEvery: mode === "full" ? 5000 : 0,
    out: join(cfg.out, "random-labels"),
    seed: cfg.seed,
    json: false,
    quiet: cfg.quiet,
  };
}

/** Builds the plan of a parsed config (throws CliError for contradictory flags or missing data). */
export function makePlan(cfg: ReproduceConfig): ReproducePlan {
  if (cfg.quick && cfg.full) throw new CliError("--quick and --full exclude each other");
  const mode: Mode = cfg.quick ? "quick" : cfg.full ? "full" : "default";
  const figs: FigureOverrides = mode === "quick"
    ? structuredClone(QUICK_FIGURES)
    : { fig1: {}, fig4: {}, fig5: {}, fig6: {} };
  const figArgs = {
    fig1: flagsDiff(figs.fig1, {}),
    fig4: flagsDiff(figs.fig4, {}),
    fig5: flagsDiff(figs.fig5, {}),
    fig6: flagsDiff(figs.fig6, {}),
  };
  const sizes = section5Sizes(cfg, mode);
  const data = cfg.section5 || cfg.full || cfg.randomLabels ? chooseData(cfg) : null;
  const section5 = cfg.section5 && data ? planSection5(cfg, mode, data, sizes) : null;
  const randomLabels = (cfg.full || cfg.randomLabels) && data
    ? planRandomLabels(cfg, mode, data, sizes)
    : null;
  return { mode, out: cfg.out, figs, figArgs, section5, randomLabels };
}

/** The flags of `config` that differ from `defaults` (skipping output-only keys), as command-line words. */
export function flagsDiff(config: object, defaults: object): string[] {
  const skip = new Set(["out", "quiet", "json", "resume"]);
  const flags: string[] = [];
  const d = defaults as Record<string, unknown>;
  for (const [k, v] of Object.entries(config)) {
    if (skip.has(k) || JSON.stringify(v) === JSON.stringify(d[k])) continue;
    if (typeof v === "boolean") flags.push(v ? `--${toFlag(k)}` : `--no-${toFlag(k)}`);
    else flags.push(`--${toFlag(k)}`, Array.isArray(v) ? v.join(",") : String(v));
  }
  return flags;
}

/** The flags of a train config that differ from `deno task train`'s defaults (for the report). */
export function trainFlags(c: TrainConfig): string[] {
  return flagsDiff(c, defaultTrainConfig);
}

/** The command-line words that repeat a run of `deno task reproduce` (for the report). */
export function reproduceArgs(cfg: ReproduceConfig): string[] {
  const a: string[] = [];
  if (cfg.quick) a.push("--quick");
  if (cfg.full) a.push("--full");
  if (cfg.data) a.push("--data", cfg.data);
  if (cfg.dataset !== "auto") a.push("--dataset", cfg.dataset);
  if (!cfg.section5) a.push("--no-section5");
  if (cfg.randomLabels) a.push("--random-labels");
  if (cfg.iterations !== undefined) a.push("--iterations", String(cfg.iterations));
  if (cfg.batch !== undefined) a.push("--batch", String(cfg.batch));
  if (cfg.width !== undefined) a.push("--width", String(cfg.width));
  if (cfg.trainSubset !== undefined) a.push("--train-subset", String(cfg.trainSubset));
  a.push("--out", cfg.out, "--seed", String(cfg.seed));
  return a;
}
