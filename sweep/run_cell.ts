/**
 * `deno task sweep run-cell DIR INDEX`: runs (or resumes) one cell of a plan in this process, with the
 * existing trainer: a Section 5 cell through `trainRun` (experiments/section5/trainer.ts), a
 * random-labels cell through `fitRun` (experiments/random_labels.ts, which stops at the first
 * evaluation at 100% training accuracy and writes fit.json).
 *
 * - A cell with done.json is done: nothing runs (exit 0).
 * - With a checkpoint in the cell folder the run resumes from it (bit-identical to an uninterrupted run).
 * - SIGTERM or SIGINT (the trainer's own stop: the current step finishes, a checkpoint is written) and
 *   SIGUSR1, the scheduler's early warning before the time limit (here: checkpoint AND stop, where a
 *   plain `deno task train` checkpoints and goes on), end the process with {@link REQUEUE_EXIT} (75).
 * - A finished Section 5 cell gets its geometry report (`<cell>/geometry/`, as `deno task geometry` writes it).
 * - At the end done.json is written atomically ({@link DoneRecord}); a failure writes failed.json
 *   ({@link FailedRecord}) and exits with `deno task train`'s code for it. A cell locked by another
 *   process (exit 6) is not marked failed.
 *
 * Test hook: with `SUPCON_SWEEP_FAULT_CELL=<index>`, `SUPCON_FAULT_POINT` (train/signals.ts) applies
 * only to that cell and only to its first attempt (no checkpoint yet), so a test can pause one cell of
 * a running sweep at a named point and signal it there.
 * @module
 */
import { existsSync as exists } from "node:fs";
import { join } from "node:path";
import { writeJsonAtomic } from "../train/atomic.ts";
import { environmentVariable } from "../engine/environment.ts";
import { readCsv } from "../train/csv.ts";
import { RunLockedError } from "../train/lock.ts";
import { describeError } from "../experiments/train.ts";
import { type TrainHooks, type TrainResult, trainRun } from "../experiments/section5/trainer.ts";
import { fitRun, SweepInterrupted } from "../experiments/random_labels.ts";
import type { TrainConfig } from "../experiments/section5/config.ts";
import { randomLabelsConfigOf } from "./grids.ts";
import { defaultGeometryConfig, run as runGeometry } from "../experiments/geometry.ts";
import { firstLine, LOCKED_EXIT, REQUEUE_EXIT, USAGE_EXIT, UsageError } from "./errors.ts";
import {
  cellDir,
  type DoneRecord,
  type FailedRecord,
  readPlan,
  SWEEP_FILES,
  type SweepCell,
  type SweepPlan,
} from "./plan.ts";

/** Signals run-cell listens to from its start (before the trainer installs its own). */
const LISTENED = ["SIGTERM", "SIGINT", "SIGUSR1"] as const;

async function readJson(path: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return null;
  }
}

/** The test hook of the module doc: keep SUPCON_FAULT_POINT only for the named cell's first attempt. */
function scopeFaultPoint(cell: SweepCell, dir: string): void {
  const only = environmentVariable("SUPCON_SWEEP_FAULT_CELL");
  if (only === undefined || environmentVariable("SUPCON_FAULT_POINT") === undefined) return;
  if (Number(only) !== cell.index || exists(join(dir, SWEEP_FILES.checkpoint))) {
    Deno.env.delete("SUPCON_FAULT_POINT");
  }
}

/** Seconds of training over all sessions (metrics.csv's last elapsed_s), or `fallback`. */
async function elapsedOf(dir: string, fallback: number): Promise<number> {
  try {
    const rows = await readCsv(join(dir, SWEEP_FILES.metrics), { numbers: true });
    const last = rows.findLast((r) => typeof r.elapsed_s === "number");
    return typeof last?.elapsed_s === "number" ? last.elapsed_s : fallback;
  } catch {
    return fallback;
  }
}

/** Writes done.json of a finished cell from its summary.json (and fit.json). */
async function markDone(cell: SweepCell, dir: string, sessionSeconds: number): Promise<DoneRecord> {
  const summary = await readJson(join(dir, SWEEP_FILES.summary));
  if (!summary) throw new Error(`${join(dir, SWEEP_FILES.summary)}: missing or unreadable after the run`);
  const record: DoneRecord = {
    id: cell.id,
    index: cell.index,
    finishedAt: new Date().toISOString(),
    elapsedSeconds: await elapsedOf(dir, sessionSeconds),
    summary,
  };
  if (cell.kind === "random-labels") {
    const fit = await readJson(join(dir, SWEEP_FILES.fit));
    if (!fit) throw new Error(`${join(dir, SWEEP_FILES.fit)}: missing or unreadable after the run`);
    record.fit = fit;
  }
  await writeJsonAtomic(join(dir, SWEEP_FILES.done), record);
  return record;
}

/** SC loss-estimate batches of a cell's geometry report, by plan scale (the CLI's default is 1000). */
const GEOMETRY_SC_BATCHES = { paper: 1000, reduced: 100, tiny: 4 } as const;

/**
 * The Fig. 7 geometry statistics and Section 5.2's bound comparison of a finished Section 5 cell
 * (`deno task geometry` on its final checkpoint, into `<cell>/geometry/`, which collect reads), unless a
 * previous attempt wrote them.
 */
async function cellGeometry(plan: SweepPlan, dir: string): Promise<void> {
  const out = join(dir, "geometry");
  if (exists(join(out, "summary.json"))) return;
  await runGeometry({
    ...defaultGeometryConfig,
    checkpoint: dir,
    out,
    scBatches: GEOMETRY_SC_BATCHES[plan.scale] ?? 1000,
    json: false,
    quiet: true,
  });
}

/** What one attempt at a cell ended with. */
export interface CellOutcome {
  /** Exit code (0 done, {@link REQUEUE_EXIT} stopped early, else a failure). */
  code: number;
  /** One line for the log. */
  message: string;
}

/** The cell at `index` of `plan`, or a usage error naming the plan. */
export function cellAt(plan: SweepPlan, dir: string, index: number): SweepCell {
  if (!Number.isInteger(index) || index < 0 || index >= plan.cells.length) {
    throw new UsageError(
      `${join(dir, SWEEP_FILES.plan)} has ${plan.cells.length} cells (0–${
        plan.cells.length - 1
      }); no cell ${index}`,
    );
  }
  return plan.cells[index];
}

/** Runs one attempt at cell `index` of the plan in `planDir` (see the module doc). */
export async function runCell(planDir: string, index: number): Promise<CellOutcome> {
  // Listen first: without a listener SIGUSR1 would end the process at once, without a checkpoint.
  let stopBy: string | null = null;
  const listeners = LISTENED.map((sig) => {
    const fn = () => void (stopBy ??= sig);
    Deno.addSignalListener(sig, fn);
    return [sig, fn] as const;
  });
  try {
    const plan = await readPlan(planDir);
    const cell = cellAt(plan, planDir, index);
    const dir = cellDir(planDir, cell);
    const name = `cell ${cell.index} (${cell.id}, ${dir})`;
    if (exists(join(dir, SWEEP_FILES.done))) {
      return { code: 0, message: `${name}: done before; nothing to run` };
    }
    await Deno.mkdir(dir, { recursive: true });
    if (!exists(join(dir, SWEEP_FILES.cell))) await writeJsonAtomic(join(dir, SWEEP_FILES.cell), cell);
    scopeFaultPoint(cell, dir);
    try {
      await Deno.remove(join(dir, SWEEP_FILES.failed)); // this attempt replaces the last one's failure
    } catch { /* none */ }
    const t0 = performance.now();
    const seconds = () => (performance.now() - t0) / 1000;
    try {
      const config: TrainConfig = { ...cell.config, out: dir, json: false };
      // The early warning stops the run like SIGTERM does (checkpoint, then return); a stop the trainer
      // itself did not see (a signal before it listened) comes through the same hook.
      const train = async (c: TrainConfig, hooks: TrainHooks): Promise<TrainResult> => {
        const r = await trainRun(c, {
          ...hooks,
          shouldStop: (s) => stopBy !== null || !!hooks.shouldStop?.(s),
        });
        return r.status === "stopped" && stopBy !== null && !hooks.shouldStop?.(r.step)
          ? { ...r, status: "interrupted", signal: r.signal ?? stopBy }
          : r;
      };
      if (stopBy) return { code: REQUEUE_EXIT, message: `${name}: ${stopBy} before the start; run it again` };
      if (cell.kind === "random-labels") {
        try {
          await fitRun(randomLabelsConfigOf(config), config.loss, config.corruption, dir, train);
        } catch (e) {
          if (!(e instanceof SweepInterrupted)) throw e;
          return {
            code: REQUEUE_EXIT,
            message: `${name}: ${stopBy ?? "stopped"} at step ${e.step}; checkpoint written`,
          };
        }
      } else {
        const summary = await readJson(join(dir, SWEEP_FILES.summary));
        const complete = summary?.status === "completed" && summary.step === config.iterations &&
          exists(join(dir, SWEEP_FILES.checkpoint));
        if (!complete) {
          config.resume = exists(join(dir, SWEEP_FILES.checkpoint));
          const r: TrainResult = await train(config, {});
          if (r.status !== "completed") {
            return {
              code: REQUEUE_EXIT,
              message: `${name}: ${r.signal ?? stopBy ?? "stopped"} at step ${r.step} of ${r.iterations}; ` +
                `checkpoint written`,
            };
          }
        }
      }
      if (cell.kind === "section5") await cellGeometry(plan, dir);
      const done = await markDone(cell, dir, seconds());
      return { code: 0, message: `${name}: done in ${done.elapsedSeconds.toFixed(1)} s of training` };
    } catch (e) {
      if (e instanceof RunLockedError) return { code: LOCKED_EXIT, message: `${name}: ${firstLine(e)}` };
      const { code, message } = describeError(e);
      const failed: FailedRecord = {
        id: cell.id,
        index: cell.index,
        at: new Date().toISOString(),
        exitCode: code,
        error: message,
      };
      try {
        await writeJsonAtomic(join(dir, SWEEP_FILES.failed), failed);
      } catch { /* the message below still names the cause */ }
      return { code, message: `${name}: ${message}` };
    }
  } finally {
    for (const [sig, fn] of listeners) Deno.removeSignalListener(sig, fn);
  }
}

/** The run-cell verb: returns the exit code. */
export async function runCellMain(args: string[]): Promise<number> {
  if (args.length !== 2 || !/^\d+$/.test(args[1])) {
    throw new UsageError(
      "run-cell: usage: run-cell DIR INDEX (INDEX: the cell's 0-based index, as in plan.json)",
    );
  }
  const { code, message } = await runCell(args[0], Number(args[1]));
  (code === 0 ? console.log : console.error)(
    code === 0 ? message : `${code === REQUEUE_EXIT ? "stopped" : "error"}: ${message}`,
  );
  return code;
}

export { REQUEUE_EXIT, USAGE_EXIT };
