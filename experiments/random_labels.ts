/**
 * Section 5.3 of "Dissecting Supervised Contrastive Learning": time to fit under random labels
 * (Figs. 2 and 8).
 *
 * ```
 * deno task random-labels [--ps 0,0.2,0.4,0.6,0.8,1] [--losses ce,ce-fix,sc] [--iterations 100000]
 *   [--eval-every 500] [--dataset cifar10] [--width 0.25] [--train-subset 5000] [--batch 256] [--out DIR]
 * ```
 *
 * For every label corruption p and loss (CE, CE-fix, SC) one `deno task train` run WITHOUT
 * augmentation, with exactly ⌊pN⌋ training labels replaced by a random wrong class. Every
 * `--eval-every` iterations the run evaluates its training accuracy on the corrupted labels over the
 * whole training set (CE and CE-fix with their own classifier, SC with a linear probe retrained for
 * `--probe-iterations` = 1000 iterations at each evaluation; FORMULAS.md). The time to fit is the
 * first evaluation at 100% accuracy; a run stops there. Runs that do not fit within `--iterations`
 * are "not fitted" (drawn at the cap with a red square).
 *
 * Resumable: each (loss, p) run has its own sub-folder `<out>/<loss>-p<p>`; a finished run (its
 * fit.json) is skipped on a re-run with the same --out, and an interrupted one continues from its
 * checkpoint. Writes time_to_fit.csv, evaluations.csv, summary.json, config.json and
 * time_to_fit.svg/png to --out.
 * @module
 */
import { existsSync as exists } from "node:fs";
import { join } from "node:path";
import { defaultConfig, type ExperimentConfig, parseExperimentArgs, runDir, saveConfig } from "./lib/cli.ts";
import { readCsv, writeCsv } from "../train/csv.ts";
import { writeJsonAtomic } from "../train/atomic.ts";
import { saveFigure } from "./lib/plot.ts";
import { printJsonLine, writeSummary } from "./lib/summary.ts";
import {
  defaultTrainConfig,
  type LossName,
  TRAIN_OPTIONS,
  type TrainConfig,
  validateTrainConfig,
} from "./section5/config.ts";
import { readCheckpoint } from "./section5/checkpoint.ts";
import { RUN_FILES, type TrainHooks, type TrainResult, trainRun } from "./section5/trainer.ts";
import {
  type FitEvaluation,
  FitTracker,
  type TimeToFit,
  timeToFit,
  timeToFitFigure,
  type TimeToFitPoint,
} from "./section5/time_to_fit.ts";

/** Command-line options of `deno task random-labels` (besides --out, --seed, --json, --quiet). */
export const RANDOM_LABELS_OPTIONS = {
  ps: {
    type: "number[]",
    default: [0, 0.2, 0.4, 0.6, 0.8, 1.0],
    min: 0,
    max: 1,
    description: "label corruption fractions p (comma separated)",
  },
  losses: {
    type: "string[]",
    default: ["ce", "ce-fix", "sc"],
    choices: ["ce", "ce-fix", "sc"],
    description: "losses (comma separated)",
  },
  iterations: {
    type: "integer",
    default: 100000,
    min: 1,
    description: "iteration budget (the cap of the time to fit)",
  },
  evalEvery: {
    type: "integer",
    default: 500,
    min: 1,
    description: "evaluate the training accuracy every E iterations",
  },
  probeIterations: {
    type: "integer",
    default: 1000,
    min: 1,
    description: "SC: probe iterations at each evaluation",
  },
  // Options shared with `deno task train` (same flags, same defaults).
  dataset: TRAIN_OPTIONS.dataset,
  data: TRAIN_OPTIONS.data,
  model: TRAIN_OPTIONS.model,
  width: TRAIN_OPTIONS.width,
  trainSubset: TRAIN_OPTIONS.trainSubset,
  testSubset: {
    type: "integer",
    default: 1000,
    min: 0,
    description: "first n test images at evaluations (0 = all)",
  },
  batch: TRAIN_OPTIONS.batch,
  lr: TRAIN_OPTIONS.lr,
  corruptionMode: TRAIN_OPTIONS.corruptionMode,
  syntheticN: TRAIN_OPTIONS.syntheticN,
  syntheticTestN: TRAIN_OPTIONS.syntheticTestN,
  syntheticClasses: TRAIN_OPTIONS.syntheticClasses,
  syntheticSize: TRAIN_OPTIONS.syntheticSize,
  evalBatch: { type: "integer", default: 256, min: 1, description: "batch size of the evaluations" },
  checkpointEvery: { type: "integer", default: 5000, min: 0, description: "checkpoint every N iterations" },
} as const;

/** Parsed configuration of `deno task random-labels`. */
export type RandomLabelsConfig = ExperimentConfig<typeof RANDOM_LABELS_OPTIONS>;

/** The CLI metadata. */
export const RANDOM_LABELS_META = {
  name: "random-labels",
  description: "Section 5.3 / Figs. 2 and 8: time to fit (first evaluation at 100% training accuracy on " +
    "the corrupted labels) against the label corruption p, for CE, CE-fix and SC; resumable.",
};

/** Defaults of every option (out = runs/random-labels). */
export const defaultRandomLabelsConfig: Readonly<RandomLabelsConfig> = Object.freeze(
  defaultConfig(RANDOM_LABELS_OPTIONS, join("runs", "random-labels")),
);

/** fit.json of one finished (loss, p) run. */
export interface FitRecord {
  /** Loss. */
  loss: LossName;
  /** Label corruption. */
  p: number;
  /** The time to fit. */
  fit: TimeToFit;
  /** Every evaluation of the run. */
  evaluations: (FitEvaluation & { trainErrorClean?: number; testError?: number })[];
  /** How the run ended: fitted (stopped at the first 100% evaluation) or budget (ran to the cap). */
  ended: "fitted" | "budget";
  /** Wall-clock seconds of this session's training. */
  seconds: number;
}

/** One row of the sweep's summary. */
export interface SweepEntry extends FitRecord {
  /** The run folder. */
  dir: string;
  /** True when the run was finished before (skipped now). */
  skipped: boolean;
}

/** summary.json of the sweep. */
export interface RandomLabelsSummary {
  /** The iteration budget. */
  cap: number;
  /** Evaluation interval. */
  evalEvery: number;
  /** Every (loss, p) run. */
  runs: SweepEntry[];
  /** Files written. */
  paths: Record<string, string>;
}

/** A run of the sweep was interrupted (SIGINT/SIGTERM) before it fitted; re-running the sweep continues it. */
export class SweepInterrupted extends Error {
  constructor(
    /** The run folder. */
    readonly dir: string,
    /** Its checkpointed step. */
    readonly step: number,
  ) {
    super(`${dir}: interrupted at step ${step} (checkpoint written); run the same command again to continue`);
    this.name = "SweepInterrupted";
  }
}

/** The training function (injectable so the sweep logic is testable without training). */
export type TrainFn = (config: TrainConfig, hooks: TrainHooks) => Promise<TrainResult>;

/** Sub-folder name of a (loss, p) run, e.g. `ce-fix-p0.4`. */
export function runFolder(loss: string, p: number): string {
  return `${loss}-p${Number(p.toFixed(6))}`;
}

/** The `deno task train` config of one (loss, p) run of the sweep. */
export function trainConfigFor(cfg: RandomLabelsConfig, loss: LossName, p: number, dir: string): TrainConfig {
  const c: TrainConfig = {
    ...defaultTrainConfig,
    dataset: cfg.dataset as TrainConfig["dataset"],
    data: cfg.data,
    loss,
    model: cfg.model as TrainConfig["model"],
    width: cfg.width,
    iterations: cfg.iterations,
    batch: cfg.batch,
    lr: cfg.lr,
    augment: false,
    corruption: p,
    corruptionMode: cfg.corruptionMode as TrainConfig["corruptionMode"],
    trainSubset: cfg.trainSubset,
    testSubset: cfg.testSubset,
    syntheticN: cfg.syntheticN,
    syntheticTestN: cfg.syntheticTestN,
    syntheticClasses: cfg.syntheticClasses,
    syntheticSize: cfg.syntheticSize,
    probeIterations: cfg.probeIterations,
    evalBatch: cfg.evalBatch,
    evalEvery: cfg.evalEvery,
    checkpointEvery: cfg.checkpointEvery,
    logEvery: Math.min(defaultTrainConfig.logEvery, cfg.evalEvery),
    resume: false,
    seed: cfg.seed,
    out: dir,
    json: false,
    quiet: cfg.quiet,
  };
  validateTrainConfig(c);
  return c;
}

/** Evaluations a previous session of a run logged up to its checkpoint (from its metrics.csv). */
async function previousEvaluations(dir: string): Promise<FitRecord["evaluations"]> {
  const ckpt = join(dir, RUN_FILES.checkpoint);
  const metrics = join(dir, RUN_FILES.metrics);
  if (!exists(ckpt) || !exists(metrics)) return [];
  const step = (await readCheckpoint(ckpt)).meta.step;
  const num = (v: unknown) => (typeof v === "number" ? v : undefined);
  return (await readCsv(metrics, { numbers: true }))
    .filter((r) => typeof r.train_error === "number" && typeof r.step === "number" && r.step <= step)
    .map((r) => ({
      step: r.step as number,
      trainError: r.train_error as number,
      trainErrorClean: num(r.train_error_clean) ?? (r.train_error as number),
      testError: num(r.test_error),
    }));
}

/**
 * One (loss, p) run: trains (or resumes) until the first evaluation at 100% training accuracy or the
 * cap, and writes fit.json. Returns the record.
 */
export async function fitRun(
  cfg: RandomLabelsConfig,
  loss: LossName,
  p: number,
  dir: string,
  train: TrainFn = trainRun,
): Promise<FitRecord> {
  const config = trainConfigFor(cfg, loss, p, dir);
  const previous = await previousEvaluations(dir);
  const tracker = new FitTracker(cfg.iterations, previous);
  const evaluations: FitRecord["evaluations"] = previous;
  const t0 = performance.now();
  if (!tracker.fitted) {
    config.resume = exists(join(dir, RUN_FILES.checkpoint));
    const result = await train(config, {
      onEval: (m) => {
        evaluations.push({
          step: m.step,
          trainError: m.trainError,
          trainErrorClean: m.trainErrorClean,
          testError: m.testError,
        });
        tracker.add(m.step, m.trainError);
      },
      shouldStop: () => tracker.fitted,
    });
    // The final evaluation at the cap comes through onEval as well; take it from the result otherwise.
    const m = result.metrics;
    if (m && !evaluations.some((e) => e.step === m.step)) {
      evaluations.push({
        step: m.step,
        trainError: m.trainError,
        trainErrorClean: m.trainErrorClean,
        testError: m.testError,
      });
      tracker.add(m.step, m.trainError);
    }
    if (result.status === "interrupted" && !tracker.fitted) throw new SweepInterrupted(dir, result.step);
  }
  const fit = tracker.result();
  const record: FitRecord = {
    loss,
    p,
    fit,
    evaluations: evaluations.sort((a, b) => a.step - b.step),
    ended: fit.fitted ? "fitted" : "budget",
    seconds: (performance.now() - t0) / 1000,
  };
  await writeJsonAtomic(join(dir, "fit.json"), record);
  return record;
}

/** Runs the sweep (see the module doc); finished runs are skipped. Returns the summary. */
export async function run(cfg: RandomLabelsConfig, train: TrainFn = trainRun): Promise<RandomLabelsSummary> {
  const out = await runDir(cfg.out);
  await saveConfig(out, cfg);
  const ps = [...new Set(cfg.ps)].sort((a, b) => a - b);
  const losses = [...new Set(cfg.losses)] as LossName[];
  const entries: SweepEntry[] = [];
  const writeOutputs = async (): Promise<Record<string, string>> => {
    const paths: Record<string, string> = {
      timeToFitCsv: join(out, "time_to_fit.csv"),
      evaluationsCsv: join(out, "evaluations.csv"),
    };
    await writeCsv(
      paths.timeToFitCsv,
      entries.map((e) => ({
        loss: e.loss,
        p: e.p,
        fitted: e.fit.fitted,
        time_to_fit: e.fit.iterations ?? "",
        cap: e.fit.cap,
        evaluations: e.fit.evaluations,
        last_step: e.fit.lastStep,
        last_train_error: e.fit.lastError,
        best_train_error: e.fit.bestError,
        skipped: e.skipped,
      })),
      [
        "loss",
        "p",
        "fitted",
        "time_to_fit",
        "cap",
        "evaluations",
        "last_step",
        "last_train_error",
        "best_train_error",
        "skipped",
      ],
    );
    await writeCsv(
      paths.evaluationsCsv,
      entries.flatMap((e) =>
        e.evaluations.map((v) => ({
          loss: e.loss,
          p: e.p,
          step: v.step,
          train_error: v.trainError,
          train_error_clean: v.trainErrorClean ?? "",
          test_error: v.testError ?? "",
        }))
      ),
      ["loss", "p", "step", "train_error", "train_error_clean", "test_error"],
    );
    return paths;
  };
  for (const loss of losses) {
    for (const p of ps) {
      const dir = join(out, runFolder(loss, p));
      await Deno.mkdir(dir, { recursive: true });
      const fitPath = join(dir, "fit.json");
      let record: FitRecord;
      let skipped = false;
      if (exists(fitPath)) {
        record = JSON.parse(await Deno.readTextFile(fitPath)) as FitRecord;
        // Re-derive with the current cap (a smaller cap can turn a fit into "not fitted").
        record.fit = timeToFit(record.evaluations, Math.min(cfg.iterations, record.fit.cap));
        skipped = true;
        if (!cfg.quiet) console.error(`random-labels: ${runFolder(loss, p)} finished before, skipped`);
      } else {
        if (!cfg.quiet) console.error(`random-labels: ${runFolder(loss, p)}`);
        record = await fitRun(cfg, loss, p, dir, train);
      }
      entries.push({ ...record, dir, skipped });
      if (!cfg.quiet) {
        console.error(
          `  ${loss} p=${p}: ${
            record.fit.fitted ? `fitted after ${record.fit.iterations} iterations` : "not fitted"
          }`,
        );
      }
      await writeOutputs(); // partial results survive an interruption
    }
  }
  const paths = await writeOutputs();
  const points: TimeToFitPoint[] = entries.map((e) => ({ loss: e.loss, p: e.p, fit: e.fit }));
  try {
    const fig = await saveFigure(
      out,
      "time_to_fit",
      timeToFitFigure(
        points,
        cfg.iterations,
        `Time to fit vs label corruption (${cfg.dataset}, ResNet-18 ×${cfg.width})`,
      ),
    );
    paths.figureSvg = fig.svg;
    if (fig.png) paths.figurePng = fig.png;
  } catch (e) {
    if (!cfg.quiet) console.error(`warning: figure not written: ${(e as Error).message}`);
  }
  paths.summary = join(out, "summary.json");
  const summary: RandomLabelsSummary = {
    cap: cfg.iterations,
    evalEvery: cfg.evalEvery,
    runs: entries,
    paths,
  };
  await writeSummary(out, summary);
  return summary;
}

if (import.meta.main) {
  const cfg = parseExperimentArgs(Deno.args, RANDOM_LABELS_OPTIONS, RANDOM_LABELS_META);
  try {
    const summary = await run(cfg);
    if (cfg.json) printJsonLine(summary);
  } catch (e) {
    if (!(e instanceof SweepInterrupted)) throw e;
    console.error(e.message);
    Deno.exit(130);
  }
}
