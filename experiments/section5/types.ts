/**
 * What a Section 5 run writes and returns: file names, metrics columns and rows, evaluation metrics,
 * hooks and the result of `trainRun` (experiments/section5/trainer.ts).
 * @module
 */
import type { ResNet18 } from "../../models/resnet.ts";
import type { GpuDataset } from "../../train/data_gpu.ts";
import type { Head } from "../../train/evaluate.ts";
import type { TrainConfig } from "./config.ts";

/** File names inside a run folder. */
export const RUN_FILES = {
  config: "config.json",
  checkpoint: "checkpoint.safetensors",
  metrics: "metrics.csv",
  summary: "summary.json",
  corruption: "corruption.json",
  figure: "loss",
} as const;

/** Columns of metrics.csv. Evaluation columns are empty on rows without an evaluation. */
export const METRIC_COLUMNS = [
  "step",
  "lr",
  "loss",
  "loss_per_sample",
  "loss_avg",
  "batch_error",
  "images_per_s",
  "elapsed_s",
  "train_error",
  "train_error_clean",
  "test_error",
  "probe_loss",
] as const;

/** One row of metrics.csv (missing values are empty cells). */
export interface MetricsRow {
  /** Completed iterations. */
  step: number;
  /** Learning rate of the last iteration. */
  lr?: number;
  /** Loss of the last iteration's batch (SC: the sum over the b anchors). */
  loss?: number;
  /** Loss per sample (SC: loss / b; CE: the loss itself, already a mean). */
  loss_per_sample?: number;
  /** Mean batch loss over the iterations since the previous log row. */
  loss_avg?: number;
  /** Error of the last batch w.r.t. its (possibly corrupted) labels (CE, CE-fix). */
  batch_error?: number;
  /** Training throughput since the previous log row. */
  images_per_s?: number;
  /** Seconds of training so far (over all resumed sessions). */
  elapsed_s?: number;
  /** Error on the training set under the training transform, w.r.t. the labels trained on. */
  train_error?: number;
  /** The same w.r.t. the clean labels (only with corruption). */
  train_error_clean?: number;
  /** Test error (no augmentation). */
  test_error?: number;
  /** SC: cross-entropy of the probe's last batch. */
  probe_loss?: number;
}

/** Errors of one evaluation. */
export interface EvalMetrics {
  /** Step evaluated. */
  step: number;
  /** Training error (training transform, labels trained on). */
  trainError: number;
  /** Training error w.r.t. the clean labels (equal to trainError without corruption). */
  trainErrorClean: number;
  /** Test error. */
  testError: number;
  /** SC: the probe's last batch loss. */
  probeLoss?: number;
}

/** Callbacks of {@link trainRun} (for experiments built on top, and tests). */
export interface TrainHooks {
  /** After each metrics row is written. */
  onLog?(row: MetricsRow): void;
  /** After each evaluation. */
  onEval?(metrics: EvalMetrics): void;
  /**
   * Polled after every step: returning true stops the run like SIGINT (the step is finished, a
   * checkpoint is written and trainRun returns with status "stopped").
   */
  shouldStop?(step: number): boolean;
  /**
   * After the final evaluation, with the trained modules still alive (e.g. to compute geometry
   * statistics); `head` is the classifier (CE, CE-fix) or the probe (SC).
   */
  onFinish?(ctx: FinishContext): Promise<void> | void;
}

/** What {@link TrainHooks.onFinish} sees. */
export interface FinishContext {
  /** The trained encoder (eval mode). */
  model: ResNet18;
  /** Classifier or probe. */
  head: Head | null;
  /** Training data on the GPU (labels as trained on). */
  train: GpuDataset;
  /** Test data on the GPU. */
  test: GpuDataset;
  /** The config. */
  config: TrainConfig;
}

/** Result of {@link trainRun}. */
export interface TrainResult {
  /**
   * "completed" (all iterations and the evaluation), "interrupted" (SIGINT/SIGTERM; resumable) or
   * "stopped" (`hooks.shouldStop` asked for it, e.g. a random-label run that fitted; also resumable).
   */
  status: "completed" | "interrupted" | "stopped";
  /** The run folder. */
  outDir: string;
  /** Completed iterations. */
  step: number;
  /** Total iterations T. */
  iterations: number;
  /** Final evaluation (null when interrupted). */
  metrics: EvalMetrics | null;
  /** The last metrics row. */
  lastLog: MetricsRow | null;
  /** Mean training throughput of this session (images per second). */
  imagesPerSecond: number;
  /** Files written. */
  paths: {
    config: string;
    checkpoint: string;
    metrics: string;
    summary: string;
    corruption?: string;
    figureSvg?: string;
    figurePng?: string;
  };
  /** The command that continues an interrupted run. */
  resumeCommand: string;
  /** The stop signal received (SIGINT, SIGTERM), also one during the finish of a completed run; else null. */
  signal?: string | null;
}
