/**
 * `deno task sweep submit DIR --backend slurm|local [--partition P] [--gpus-per-cell N]
 * [--time HH:MM:SS] [--account A] [--max-parallel N] [--warn-seconds S] [--sbatch-arg X]…`: starts the
 * cells that are neither done nor running nor already queued. Done cells never run again; stopped
 * ones resume from their checkpoints. When nothing is left it says so and submits nothing.
 *
 * - slurm: writes DIR/sweep.sbatch (sweep/slurm.ts), calls sbatch, records the job id in DIR/jobs.json.
 * - local: runs the cells here, at most --max-parallel at a time (sweep/local.ts); the exit code is 0
 *   when every cell is done, 75 when the sweep was stopped by a signal (submit again to resume), 1 when
 *   a cell failed.
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { REQUEUE_EXIT, UsageError } from "./errors.ts";
import { readJobs, recordSubmission, slurmJobIds } from "./jobs.ts";
import { runLocal } from "./local.ts";
import { cellState, readPlan, SWEEP_FILES, type SweepPlan } from "./plan.ts";
import { sbatch, sbatchScript, type SlurmOptions, squeueTasks } from "./slurm.ts";
import { writeFileAtomic } from "../train/atomic.ts";

/** Options of the submit verb. */
export interface SubmitOptions extends SlurmOptions {
  /** The plan folder. */
  dir: string;
  /** Where the cells run. */
  backend: "slurm" | "local";
}

function positiveInt(flag: string, v: string | undefined, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new UsageError(`submit: ${flag} ${v} must be an integer ≥ ${min}`);
  }
  return n;
}

/** Parses the submit verb's arguments (the plan folder is the one positional argument). */
export function parseSubmitArgs(args: string[]): SubmitOptions {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      backend: { type: "string" },
      partition: { type: "string" },
      "gpus-per-cell": { type: "string" },
      time: { type: "string" },
      account: { type: "string" },
      "max-parallel": { type: "string" },
      "warn-seconds": { type: "string" },
      "sbatch-arg": { type: "string", multiple: true },
      deno: { type: "string" },
    },
    strict: true,
  });
  if (positionals.length !== 1) {
    throw new UsageError("submit: usage: submit DIR --backend slurm|local [options]");
  }
  if (values.backend !== "slurm" && values.backend !== "local") {
    throw new UsageError("submit: --backend slurm|local is required");
  }
  if (values.time !== undefined && !/^(\d+-)?\d{1,2}(:\d{2}){0,2}$/.test(values.time)) {
    throw new UsageError(`submit: --time ${values.time} is not HH:MM:SS (or D-HH:MM:SS)`);
  }
  return {
    dir: positionals[0],
    backend: values.backend,
    partition: values.partition,
    gpusPerCell: positiveInt("--gpus-per-cell", values["gpus-per-cell"], 0),
    time: values.time,
    account: values.account,
    maxParallel: positiveInt("--max-parallel", values["max-parallel"]),
    warnSeconds: positiveInt("--warn-seconds", values["warn-seconds"]),
    sbatchArgs: values["sbatch-arg"],
    deno: values.deno,
  };
}

/** What is left to start: cells not done, not running and not queued (by an earlier Slurm submission). */
export async function cellsToStart(
  dir: string,
  plan: SweepPlan,
): Promise<{ start: number[]; done: number; running: number[]; queued: number[] }> {
  const states = plan.cells.map((c) => cellState(dir, c));
  const tasks = (await squeueTasks(slurmJobIds(await readJobs(dir)))) ?? [];
  const queued = [...new Set(tasks.map((t) => t.index))].filter((i) => states[i] !== "done");
  const running = plan.cells.filter((_, i) => states[i] === "running").map((c) => c.index);
  const start = plan.cells
    .filter((c, i) => states[i] !== "done" && states[i] !== "running" && !queued.includes(c.index))
    .map((c) => c.index);
  return { start, done: states.filter((s) => s === "done").length, running, queued };
}

/** The submit verb: returns the exit code. */
export async function submitMain(args: string[]): Promise<number> {
  const o = parseSubmitArgs(args);
  const plan = await readPlan(o.dir);
  const { start, done, running, queued } = await cellsToStart(o.dir, plan);
  const n = plan.cells.length;
  if (start.length === 0) {
    const busy = new Set([...running, ...queued]).size;
    console.log(
      done === n
        ? `all ${n} cells are done; nothing submitted`
        : `nothing to submit: ${done} of ${n} cells done, ${busy} running or queued`,
    );
    return 0;
  }
  const at = new Date().toISOString();
  if (o.backend === "slurm") {
    await Deno.mkdir(join(o.dir, SWEEP_FILES.logs), { recursive: true });
    const script = join(o.dir, SWEEP_FILES.sbatch);
    await writeFileAtomic(script, sbatchScript(o.dir, start, o));
    const jobId = await sbatch(script);
    await recordSubmission(o.dir, { backend: "slurm", at, cells: start, jobId, script });
    console.log(
      `submitted ${start.length} of ${n} cells as Slurm array job ${jobId} (${script}); ${done} done before`,
    );
    return 0;
  }
  const exitCodes: Record<string, number> = {};
  const record = () =>
    recordSubmission(o.dir, { backend: "local", at, cells: start, pid: Deno.pid, exitCodes });
  await record();
  console.log(
    `running ${start.length} of ${n} cells here, ${o.maxParallel ?? 1} at a time; ${done} done before`,
  );
  const result = await runLocal(o.dir, start, {
    maxParallel: o.maxParallel,
    onExit: async (index, code) => {
      exitCodes[index] = code;
      await record();
    },
  });
  const failed = [...result.codes].filter(([, c]) => c !== 0 && c !== REQUEUE_EXIT).map(([i]) => i);
  const stopped = [...result.codes].filter(([, c]) => c === REQUEUE_EXIT).map(([i]) => i);
  const ok = [...result.codes].filter(([, c]) => c === 0).length;
  console.log(
    `${ok} cells done now` +
      (stopped.length ? `, ${stopped.length} stopped (resumable: ${stopped.join(", ")})` : "") +
      (failed.length ? `, ${failed.length} failed (${failed.join(", ")})` : ""),
  );
  if (failed.length) return 1;
  return result.stoppedBy || stopped.length ? REQUEUE_EXIT : 0;
}
