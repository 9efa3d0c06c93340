/**
 * The sweep's contract: what `deno task sweep plan` writes and every other verb (submit, run-cell,
 * status, collect) reads. A plan folder holds
 *
 * ```
 * DIR/plan.json               {@link SweepPlan} (written atomically)
 * DIR/cells/<id>/cell.json    the cell's {@link SweepCell}
 * DIR/cells/<id>/…            the trainer's own outputs: config.json, checkpoint.safetensors, metrics.csv,
 *                             summary.json (random-labels cells also corruption.json and fit.json)
 * DIR/cells/<id>/done.json    {@link DoneRecord}, written atomically when the cell finished
 * DIR/cells/<id>/failed.json  {@link FailedRecord}, when its last attempt failed (removed by the next one)
 * DIR/cells/<id>/.lock        the trainer's run-folder lock (train/lock.ts), held while the cell trains
 * DIR/sweep.sbatch, DIR/jobs.json, DIR/logs/%A_%a.out   written by `submit --backend slurm`
 * ```
 *
 * A cell's `config` is the flat `deno task train` configuration (experiments/section5/config.ts) with
 * `out` relative to the plan folder (equal to the cell's `dir`); run-cell resolves it. Its `id` is the
 * first 12 hex digits of the SHA-256 of the canonical JSON (sorted keys) of `{ kind, config }` without
 * the output-only keys (`out`, `resume`, `json`, `quiet`), so the same configuration has the same id
 * in every plan.
 *
 * Needs `--allow-read` (and `--allow-write` for {@link writePlan}).
 * @module
 */
import { existsSync as exists } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { readCsv } from "../train/csv.ts";
import { writeJsonAtomic } from "../train/atomic.ts";
import { LOCK_FILE } from "../train/lock.ts";
import type { DatasetName, LossName, TrainConfig } from "../experiments/section5/config.ts";

/** The `format` of plan.json. */
export const PLAN_FORMAT = "supcon-webgpu/sweep/1";

/** Sizes of a grid: the paper's protocol, a reduced one for a workstation, a tiny one for tests. */
export type Scale = "paper" | "reduced" | "tiny";
/** What a cell runs: one Section 5 training run, or one random-label time-to-fit run. */
export type CellKind = "section5" | "random-labels";

/** The grid coordinates of a cell (what tables and figures group by). */
export interface CellLabels {
  /** Loss. */
  loss: LossName;
  /** Dataset. */
  dataset: DatasetName;
  /** Training augmentation (random crop + flip). */
  augment: boolean;
  /** Pre-activation ResNet-18 (the paper's conjecture) instead of the standard one. */
  preact: boolean;
  /** Random-labels cells: the label corruption fraction p. */
  fraction?: number;
  /** Seed of everything in the run. */
  seed: number;
}

/** One cell of a sweep. */
export interface SweepCell {
  /** 0-based position in plan.json's `cells`: the Slurm array index. */
  index: number;
  /** Stable id: first 12 hex digits of the SHA-256 of the canonical configuration (see the module doc). */
  id: string;
  /** The cell's folder, relative to the plan folder: `cells/<id>`. */
  dir: string;
  /** What the cell runs. */
  kind: CellKind;
  /** Grid coordinates. */
  labels: CellLabels;
  /**
   * The flat trainer configuration (experiments/section5/config.ts `TrainConfig`; `out` = `dir`,
   * relative to the plan folder). Random-labels cells: `iterations` is the cap, `evalEvery` the
   * evaluation interval, `corruption` the fraction, `augment` false.
   */
  config: TrainConfig;
}

/** DIR/plan.json. */
export interface SweepPlan {
  /** {@link PLAN_FORMAT}. */
  format: typeof PLAN_FORMAT;
  /** The grid's name: "section5", "random-labels", or the path of the grid file. */
  grid: string;
  /** Its scale. */
  scale: Scale;
  /** ISO time of planning. */
  createdAt: string;
  /** The project's commit (or "unknown") and Deno's version. */
  versions: { project: string; deno: string };
  /** Every cell, `cells[i].index === i`. */
  cells: SweepCell[];
}

/** DIR/cells/<id>/done.json. */
export interface DoneRecord {
  /** The cell's id. */
  id: string;
  /** The cell's index. */
  index: number;
  /** ISO time it finished. */
  finishedAt: string;
  /** Wall-clock seconds of training over all its sessions (metrics.csv's `elapsed_s`, else this session's). */
  elapsedSeconds: number;
  /**
   * The trainer's summary.json (status "completed", or "stopped" for a random-labels run that fitted):
   * `step`, `iterations`, `config`, `configHash`, `metrics` ({ step, trainError, trainErrorClean,
   * testError, probeLoss? }), `lastLog`, `imagesPerSecond`, `paths`, …
   */
  summary: Record<string, unknown>;
  /** Random-labels cells: fit.json (experiments/random_labels.ts `FitRecord`: loss, p, fit, evaluations, ended). */
  fit?: Record<string, unknown>;
}

/** DIR/cells/<id>/failed.json. */
export interface FailedRecord {
  /** The cell's id. */
  id: string;
  /** The cell's index. */
  index: number;
  /** ISO time of the failure. */
  at: string;
  /** run-cell's exit code (`deno task train`'s codes: 2 config, 3 diverged, 4 data, 5 run folder, …). */
  exitCode: number;
  /** One line naming the cause. */
  error: string;
}

/** State of a cell, from its folder. */
export type CellState = "pending" | "running" | "done" | "failed";

/** How far a cell got, from its metrics.csv. */
export interface CellProgress {
  /** Last step logged (0 when nothing is). */
  step: number;
  /** Iterations planned (random-labels: the cap). */
  iterations: number;
  /** Loss per sample of the last logged step (SC: sum over the batch / b), or null. */
  loss: number | null;
  /** Seconds of training so far over all sessions (metrics.csv `elapsed_s`), or null. */
  elapsedSeconds: number | null;
}

/** File names inside a plan folder and a cell folder. */
export const SWEEP_FILES = {
  plan: "plan.json",
  sbatch: "sweep.sbatch",
  jobs: "jobs.json",
  logs: "logs",
  cell: "cell.json",
  done: "done.json",
  failed: "failed.json",
  metrics: "metrics.csv",
  summary: "summary.json",
  fit: "fit.json",
  checkpoint: "checkpoint.safetensors",
} as const;

/** plan.json is missing, unreadable or not a plan; the message names the file. */
export class PlanError extends Error {
  /** The error for `path`. */
  constructor(readonly path: string, detail: string, options?: ErrorOptions) {
    super(`${path}: ${detail}`, options);
    this.name = "PlanError";
  }
}

/** Keys of a config that do not change what a cell computes (left out of its id). */
export const OUTPUT_ONLY_KEYS = ["out", "resume", "json", "quiet"] as const;

/** JSON with object keys sorted at every level. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]));
    }
    return v;
  });
}

/** The stable id of a cell's configuration (see the module doc). */
export function cellId(kind: CellKind, config: TrainConfig): string {
  const c: Record<string, unknown> = { ...config };
  for (const k of OUTPUT_ONLY_KEYS) delete c[k];
  return createHash("sha256").update(canonicalJson({ kind, config: c })).digest("hex").slice(0, 12);
}

/** The absolute-or-cwd-relative folder of a cell of the plan in `planDir`. */
export function cellDir(planDir: string, cell: SweepCell): string {
  return join(planDir, cell.dir);
}

/** Reads and checks `DIR/plan.json`; throws {@link PlanError} naming the file. */
export async function readPlan(dir: string): Promise<SweepPlan> {
  const path = join(dir, SWEEP_FILES.plan);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "not found (run `deno task sweep plan --out DIR` first)"
      : (e as Error).message.split("\n")[0];
    throw new PlanError(path, why, { cause: e });
  }
  let plan: SweepPlan;
  try {
    plan = JSON.parse(text);
  } catch (e) {
    throw new PlanError(path, `not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (plan?.format !== PLAN_FORMAT) {
    throw new PlanError(path, `format ${JSON.stringify(plan?.format)} is not ${PLAN_FORMAT}`);
  }
  if (!Array.isArray(plan.cells)) throw new PlanError(path, "has no cells array");
  plan.cells.forEach((c, i) => {
    if (c?.index !== i || typeof c.id !== "string" || typeof c.dir !== "string" || !c.config) {
      throw new PlanError(path, `cell ${i} is malformed (index, id, dir and config are required)`);
    }
  });
  return plan;
}

/** Writes `DIR/plan.json` atomically. */
export async function writePlan(dir: string, plan: SweepPlan): Promise<string> {
  const path = join(dir, SWEEP_FILES.plan);
  await writeJsonAtomic(path, plan);
  return path;
}

/**
 * True while a process holds the trainer's lock on `dir` (an OS file lock: it dies with its holder).
 * Probes without taking it for longer than a moment and without changing the file.
 */
export function lockHeld(dir: string): boolean {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(join(dir, LOCK_FILE), { read: true });
  } catch {
    return false; // no lock file: nobody holds it
  }
  try {
    if (!file.tryLockSync(true)) return true;
    file.unlockSync();
    return false;
  } catch {
    return false;
  } finally {
    file.close();
  }
}

/**
 * The state of a cell of the plan in `planDir`: running while its lock is held, else done with a
 * done.json, failed with a failed.json, else pending (never started, or stopped and resumable).
 */
export function cellState(planDir: string, cell: SweepCell): CellState {
  const dir = cellDir(planDir, cell);
  if (lockHeld(dir)) return "running";
  if (exists(join(dir, SWEEP_FILES.done))) return "done";
  if (exists(join(dir, SWEEP_FILES.failed))) return "failed";
  return "pending";
}

/** Reads a cell's done.json, or null when it is absent or unreadable. */
export async function readDone(planDir: string, cell: SweepCell): Promise<DoneRecord | null> {
  return await readJsonOrNull<DoneRecord>(join(cellDir(planDir, cell), SWEEP_FILES.done));
}

/** Reads a cell's failed.json, or null when it is absent or unreadable. */
export async function readFailed(planDir: string, cell: SweepCell): Promise<FailedRecord | null> {
  return await readJsonOrNull<FailedRecord>(join(cellDir(planDir, cell), SWEEP_FILES.failed));
}

async function readJsonOrNull<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch {
    return null;
  }
}

/**
 * Step, last loss and elapsed time of a cell from its metrics.csv (and the step of its summary.json
 * when a stop checkpointed a later step); zeros/nulls when it has none yet.
 */
export async function cellProgress(planDir: string, cell: SweepCell): Promise<CellProgress> {
  const progress: CellProgress = {
    step: 0,
    iterations: cell.config.iterations,
    loss: null,
    elapsedSeconds: null,
  };
  let rows: Record<string, string | number>[];
  try {
    rows = await readCsv(join(cellDir(planDir, cell), SWEEP_FILES.metrics), { numbers: true });
  } catch {
    rows = []; // absent, or being written: nothing to show yet
  }
  for (const r of rows) {
    if (typeof r.step === "number") progress.step = Math.max(progress.step, r.step);
    if (typeof r.loss_per_sample === "number") progress.loss = r.loss_per_sample;
    if (typeof r.elapsed_s === "number") progress.elapsedSeconds = r.elapsed_s;
  }
  // A run stopped between two log rows checkpointed a later step; its summary.json names it.
  const summary = await readJsonOrNull<{ step?: unknown }>(join(cellDir(planDir, cell), SWEEP_FILES.summary));
  if (typeof summary?.step === "number") progress.step = Math.max(progress.step, summary.step);
  return progress;
}
