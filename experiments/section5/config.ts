/**
 * Configuration of a Section 5 training run (`deno task train`): the option table, defaults,
 * argument parsing, a stable hash, and the check that a resumed run matches the saved config.
 *
 * Defaults follow the paper's protocol (FORMULAS.md "Protocol facts"): ResNet-18, b = 256 drawn
 * i.i.d. with replacement, SGD with momentum 0.9 and weight decay 1e-4, lr_t = 0.1·(1 − t/T)^5,
 * T = 100k, τ = 0.1, a 5000-iteration probe for SC. The default dataset is the built-in synthetic
 * one so the command runs without any data.
 * @module
 */
import { join } from "node:path";
import { createHash } from "node:crypto";
import {
  CliError,
  CliHelp,
  defaultConfig,
  type ExperimentConfig,
  parseExperimentArgsOrThrow,
  timestamp,
} from "../lib/cli.ts";

/** The option table of `deno task train` (camelCase keys map to kebab-case flags). */
export const TRAIN_OPTIONS = {
  dataset: {
    type: "string",
    default: "synthetic",
    choices: ["cifar10", "cifar100", "fashion-mnist", "synthetic"],
    description: "training data (synthetic needs no files)",
  },
  data: {
    type: "string",
    default: "",
    description: "dataset folder (cifar10: ../shared/data/cifar-10-batches-bin if present; " +
      "fashion-mnist: /usr/share/datasets/fashion-mnist)",
    metavar: "PATH",
  },
  loss: { type: "string", default: "ce", choices: ["ce", "ce-fix", "sc"], description: "loss" },
  model: {
    type: "string",
    default: "resnet18",
    choices: ["resnet18", "preact-resnet18"],
    description: "encoder",
  },
  width: {
    type: "number",
    default: 1,
    min: 0.001,
    description: "width multiplier of ResNet-18 (0.125, 0.25 for reduced runs)",
  },
  iterations: { type: "integer", default: 100000, min: 1, description: "training iterations T" },
  batch: { type: "integer", default: 256, min: 2, description: "batch size b" },
  lr: { type: "number", default: 0.1, min: 0, description: "base learning rate" },
  momentum: { type: "number", default: 0.9, min: 0, max: 1, description: "SGD momentum" },
  weightDecay: {
    type: "number",
    default: 1e-4,
    min: 0,
    description: "weight decay on every trained parameter",
  },
  lrPower: { type: "number", default: 5, min: 0, description: "lr_t = lr·(1 − t/T)^p" },
  augment: { type: "boolean", default: true, description: "random crop 32 (padding 4) + horizontal flip" },
  corruption: {
    type: "number",
    default: 0,
    min: 0,
    max: 1,
    description: "fraction p of training labels randomised",
  },
  corruptionMode: {
    type: "string",
    default: "wrong",
    choices: ["wrong", "any"],
    description: "corrupted labels drawn from the K−1 wrong classes or from all K",
  },
  sampler: {
    type: "string",
    default: "iid",
    choices: ["iid", "epoch"],
    description: "batches i.i.d. with replacement (paper) or shuffled epochs",
  },
  trainSubset: {
    type: "integer",
    default: 0,
    min: 0,
    description: "balanced training subset of n images (0 = all)",
  },
  testSubset: { type: "integer", default: 0, min: 0, description: "first n test images only (0 = all)" },
  syntheticN: { type: "integer", default: 2000, min: 2, description: "synthetic: training images" },
  syntheticTestN: { type: "integer", default: 500, min: 1, description: "synthetic: test images" },
  syntheticClasses: { type: "integer", default: 10, min: 2, description: "synthetic: classes K" },
  syntheticSize: {
    type: "integer",
    default: 32,
    min: 8,
    description: "synthetic: image side (multiple of 8)",
  },
  tau: { type: "number", default: 0.1, min: 1e-6, description: "SC temperature (sphere radius 1/√τ)" },
  probeIterations: { type: "integer", default: 5000, min: 0, description: "SC linear probe iterations" },
  probeLr: { type: "number", default: 0.1, min: 0, description: "probe base learning rate" },
  probeWeightDecay: { type: "number", default: 1e-3, min: 0, description: "probe weight decay" },
  evalBatch: {
    type: "integer",
    default: 256,
    min: 1,
    description: "batch size of evaluation and feature extraction",
  },
  checkpointEvery: {
    type: "integer",
    default: 5000,
    min: 0,
    description: "checkpoint every N iterations (0 = only at the end)",
  },
  logEvery: {
    type: "integer",
    default: 100,
    min: 1,
    description: "read back and log metrics every M iterations",
  },
  evalEvery: {
    type: "integer",
    default: 0,
    min: 0,
    description: "evaluate every E iterations (0 = only at the end)",
  },
  resume: { type: "boolean", default: false, description: "continue from <out>/checkpoint.safetensors" },
} as const;

/** The parsed option table (without the built-ins). */
type ParsedTrain = ExperimentConfig<typeof TRAIN_OPTIONS>;

/** Datasets `deno task train` knows. */
export type DatasetName = "cifar10" | "cifar100" | "fashion-mnist" | "synthetic";
/** Losses: cross-entropy, cross-entropy with the classifier fixed at a simplex, supervised contrastive. */
export type LossName = "ce" | "ce-fix" | "sc";
/** Encoders. */
export type ModelName = "resnet18" | "preact-resnet18";

/** Full configuration of one training run (what config.json holds). */
export interface TrainConfig {
  /** Training data. */
  dataset: DatasetName;
  /** Dataset folder ("" = the default location of the dataset). */
  data: string;
  /** Loss. */
  loss: LossName;
  /** Encoder. */
  model: ModelName;
  /** Width multiplier of ResNet-18. */
  width: number;
  /** Training iterations T. */
  iterations: number;
  /** Batch size b. */
  batch: number;
  /** Base learning rate. */
  lr: number;
  /** SGD momentum. */
  momentum: number;
  /** Weight decay (PyTorch convention: gradient += wd·θ) on every trained parameter. */
  weightDecay: number;
  /** Power p of lr_t = lr·(1 − t/T)^p. */
  lrPower: number;
  /** Random crop (padding 4) + horizontal flip during training. */
  augment: boolean;
  /** Fraction of corrupted training labels. */
  corruption: number;
  /** Corrupted labels from the K−1 wrong classes or from all K. */
  corruptionMode: "wrong" | "any";
  /** Batch sampler. */
  sampler: "iid" | "epoch";
  /** Balanced training subset size (0 = all). */
  trainSubset: number;
  /** Evaluate on the first n test images only (0 = all). */
  testSubset: number;
  /** Synthetic dataset: training images. */
  syntheticN: number;
  /** Synthetic dataset: test images. */
  syntheticTestN: number;
  /** Synthetic dataset: classes. */
  syntheticClasses: number;
  /** Synthetic dataset: image side. */
  syntheticSize: number;
  /** SC temperature; points live on the sphere of radius 1/√τ. */
  tau: number;
  /** SC probe iterations. */
  probeIterations: number;
  /** SC probe base learning rate. */
  probeLr: number;
  /** SC probe weight decay. */
  probeWeightDecay: number;
  /** Batch size of evaluation and feature extraction. */
  evalBatch: number;
  /** Checkpoint every N iterations (0 = only at the end and on a signal). */
  checkpointEvery: number;
  /** Log every M iterations. */
  logEvery: number;
  /** Evaluate every E iterations (0 = only at the end). */
  evalEvery: number;
  /** Continue from `<out>/checkpoint.safetensors`. */
  resume: boolean;
  /** Seed of everything (initialisation, sampler, augmentation, corruption, subsets). */
  seed: number;
  /** Output folder. */
  out: string;
  /** Print the summary as one JSON line on stdout. */
  json: boolean;
  /** No progress output. */
  quiet: boolean;
}

/** The CLI metadata of `deno task train`. */
export const TRAIN_META = {
  name: "train",
  description: "Section 5: train ResNet-18 with CE, CE-fix or SC (plus a linear probe) and evaluate it. " +
    "Writes config.json, metrics.csv, summary.json, loss.svg/png and checkpoint.safetensors to --out.",
};

/** The defaults of every option (with `out` = "runs/train"). */
export const defaultTrainConfig: Readonly<TrainConfig> = Object.freeze(
  defaultConfig(TRAIN_OPTIONS, join("runs", "train")),
);

/** Thrown for a configuration that cannot run (bad combination, resume mismatch). */
export class ConfigError extends Error {
  /** An error with `message`. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/**
 * Parses command-line arguments into a {@link TrainConfig}. Throws `CliError` (usage errors,
 * exit code 2) or `CliHelp` (for `--help`, with the usage text) from experiments/lib/cli.ts.
 * The default `--out` is `runs/train-<loss>-<dataset>-<UTC timestamp>`.
 */
export function parseTrainArgs(args: readonly string[]): TrainConfig {
  const explicitOut = args.some((a) => a === "--out" || a.startsWith("--out="));
  const parsed: ParsedTrain = parseExperimentArgsOrThrow(args, TRAIN_OPTIONS, TRAIN_META);
  const cfg = { ...parsed } as unknown as TrainConfig;
  if (!explicitOut) {
    if (cfg.resume) throw new CliError("--resume needs --out DIR (the run folder to continue)");
    cfg.out = join("runs", `train-${cfg.loss}-${cfg.dataset}-${timestamp()}`);
  }
  try {
    validateTrainConfig(cfg);
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(e.message);
    throw e;
  }
  return cfg;
}

export { CliError, CliHelp };

/** Checks combinations the option table cannot express; throws {@link ConfigError}. */
export function validateTrainConfig(cfg: TrainConfig): void {
  const spec = TRAIN_OPTIONS as Record<
    string,
    { type: string; choices?: readonly string[]; min?: number; max?: number }
  >;
  for (const [k, s] of Object.entries(spec)) {
    const v = (cfg as unknown as Record<string, unknown>)[k];
    if (v === undefined) throw new ConfigError(`config: missing "${k}"`);
    if (s.type === "string" && typeof v !== "string") {
      throw new ConfigError(`config: "${k}" must be a string`);
    }
    if (s.choices && !s.choices.includes(v as string)) {
      throw new ConfigError(`config: ${k} "${v}" is not one of ${s.choices.join(", ")}`);
    }
    if (s.type === "boolean" && typeof v !== "boolean") {
      throw new ConfigError(`config: "${k}" must be a boolean`);
    }
    if (s.type === "number" || s.type === "integer") {
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw new ConfigError(`config: "${k}" must be a finite number`);
      }
      if (s.type === "integer" && !Number.isInteger(v)) {
        throw new ConfigError(`config: "${k}" must be an integer`);
      }
      if (s.min !== undefined && v < s.min) throw new ConfigError(`config: ${k} ${v} is below ${s.min}`);
      if (s.max !== undefined && v > s.max) throw new ConfigError(`config: ${k} ${v} is above ${s.max}`);
    }
  }
  if (cfg.dataset === "synthetic" && cfg.syntheticSize % 8 !== 0) {
    throw new ConfigError(`--synthetic-size ${cfg.syntheticSize}: ResNet-18 needs a multiple of 8`);
  }
  if (cfg.dataset === "synthetic" && cfg.syntheticN < cfg.syntheticClasses) {
    throw new ConfigError(
      `--synthetic-n ${cfg.syntheticN} is smaller than --synthetic-classes ${cfg.syntheticClasses}`,
    );
  }
  if (!Number.isInteger(cfg.seed) || cfg.seed < 0) {
    throw new ConfigError(`config: seed ${cfg.seed} must be an integer ≥ 0`);
  }
  if (!cfg.out) throw new ConfigError("config: out must name a folder");
}

/**
 * Keys that may differ between the saved config of a run and the config resuming it: the
 * iteration count (a run may be extended), and output-only settings.
 */
export const RESUME_MUTABLE_KEYS: readonly (keyof TrainConfig)[] = [
  "iterations",
  "resume",
  "out",
  "json",
  "quiet",
  "checkpointEvery",
];

/** The config without the keys a resume may change, in a canonical key order. */
export function canonicalConfig(cfg: TrainConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(cfg).sort()) {
    if ((RESUME_MUTABLE_KEYS as readonly string[]).includes(k)) continue;
    out[k] = (cfg as unknown as Record<string, unknown>)[k];
  }
  return out;
}

/** SHA-256 (hex, first 16 digits) of {@link canonicalConfig}: equal for configs a resume accepts. */
export function configHash(cfg: TrainConfig): string {
  return createHash("sha256").update(JSON.stringify(canonicalConfig(cfg))).digest("hex").slice(0, 16);
}

/**
 * Checks that `current` may resume a run saved with `saved`: every key except
 * {@link RESUME_MUTABLE_KEYS} must match, and the iteration count may only grow past `step`.
 * Throws {@link ConfigError} listing every difference.
 */
export function checkResumeConfig(saved: TrainConfig, current: TrainConfig, step: number): void {
  const a = canonicalConfig({ ...defaultTrainConfig, ...saved });
  const b = canonicalConfig(current);
  const diffs: string[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) {
      diffs.push(`${k}: saved ${JSON.stringify(a[k])}, now ${JSON.stringify(b[k])}`);
    }
  }
  if (diffs.length) {
    throw new ConfigError(
      `--resume: the options differ from the saved config.json (only --iterations may change): ${
        diffs.join("; ")
      }`,
    );
  }
  if (current.iterations < step) {
    throw new ConfigError(
      `--resume: --iterations ${current.iterations} is below the checkpoint's step ${step}`,
    );
  }
}

/** The default data folder of a dataset ("" when it has none or it is absent). */
export function defaultDataPath(dataset: DatasetName): string {
  if (dataset === "cifar10") {
    for (const p of ["../shared/data/cifar-10-batches-bin", "/work/shared/data/cifar-10-batches-bin"]) {
      try {
        if (Deno.statSync(p).isDirectory) return p;
      } catch { /* absent */ }
    }
    return "../shared/data/cifar-10-batches-bin";
  }
  if (dataset === "cifar100") {
    for (const p of ["../shared/data/cifar-100-binary", "/work/shared/data/cifar-100-binary"]) {
      try {
        if (Deno.statSync(p).isDirectory) return p;
      } catch { /* absent */ }
    }
    return "../shared/data/cifar-100-binary";
  }
  if (dataset === "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  return "";
}
