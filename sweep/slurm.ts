/**
 * The Slurm backend: the batch script of a job array over cells, `sbatch`, and what `squeue` and
 * `sacct` say about the array's tasks.
 *
 * The script (DIR/sweep.sbatch) runs one cell per array task (`--array=i,j,k%maxParallel`, the cells'
 * indices in plan.json), logs to DIR/logs/%A_%a.out, asks for the early warning `--signal=B:USR1@S`
 * (S seconds before the time limit, to the batch shell) and `--requeue`. It starts
 * `run-cell DIR $SLURM_ARRAY_TASK_ID` as its own child (not an `srun` step: srun answers SIGTERM by
 * killing its tasks, which would lose the checkpoint) in the background, passes USR1, TERM and INT on
 * to it, and when run-cell exits with 75
 * (stopped early with a checkpoint) while the task is still RUNNING (a signal, the early warning; not
 * a `scancel` that cancelled it) calls `scontrol requeue <array job>_<task>`: a non-zero exit alone
 * does not requeue, and `$SLURM_JOB_ID` of the array's last task would name the whole array. The requeued task resumes from the checkpoint (after Slurm's requeue delay,
 * `cred_expire` + 1 s, 121 s by default).
 *
 * To stop one cell by hand: `scancel --batch --signal=TERM <array>_<i>` (or `--full`): a batch job's
 * shell and its children get no signal from a plain `scancel --signal` (Slurm signals only job steps
 * then, and a cell is not one); a time limit and a preemption reach them without help.
 *
 * A Slurm 22.05 quirk: `scancel --signal=… <array>_<i>` while tasks of the same array are still pending
 * is answered "transitional state" and scancel sends the signal again every 5 s for about 50 s; a
 * requeued task that starts again within that time (only with a `cred_expire` below 50 s) receives it
 * again and stops again (it resumes from its checkpoint once more).
 * @module
 */
import { basename, join } from "node:path";
import { absolute, capture, runCellArgs } from "./runtime.ts";
import { REQUEUE_EXIT } from "./errors.ts";
import { SWEEP_FILES } from "./plan.ts";

/** Resource options of `submit --backend slurm`. */
export interface SlurmOptions {
  /** `--partition`. */
  partition?: string;
  /** GPUs per cell (`--gres=gpu:N`); 0 or absent: none requested. */
  gpusPerCell?: number;
  /** `--time` (HH:MM:SS or D-HH:MM:SS). */
  time?: string;
  /** `--account`. */
  account?: string;
  /** At most this many cells at once (`%N` of `--array`); absent: no limit. */
  maxParallel?: number;
  /** Seconds before the time limit at which USR1 arrives (default 300). */
  warnSeconds?: number;
  /** More `#SBATCH` lines, verbatim (e.g. `--mem=16G`, `--qos=long`). */
  sbatchArgs?: string[];
  /** The Deno binary the cells run with (default: this one). */
  deno?: string;
}

/** Quotes one word for bash. */
export function bashQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'"'"'`)}'`;
}

/** `--array` of a list of indices: `0,2,5-7` with an optional `%maxParallel`. */
export function arraySpec(indices: readonly number[], maxParallel?: number): string {
  const sorted = [...new Set(indices)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(j > i ? `${sorted[i]}-${sorted[j]}` : `${sorted[i]}`);
    i = j + 1;
  }
  return parts.join(",") + (maxParallel && maxParallel > 0 ? `%${maxParallel}` : "");
}

/** The batch script for the cells `indices` of the plan in `planDir` (see the module doc). */
export function sbatchScript(planDir: string, indices: readonly number[], o: SlurmOptions = {}): string {
  const dir = absolute(planDir);
  const warn = o.warnSeconds ?? 300;
  const directives = [
    `--job-name=sweep-${basename(dir)}`,
    `--array=${arraySpec(indices, o.maxParallel)}`,
    `--output=${join(dir, SWEEP_FILES.logs, "%A_%a.out")}`,
    `--open-mode=append`,
    `--signal=B:USR1@${warn}`,
    `--requeue`,
    `--ntasks=1`,
    ...(o.time ? [`--time=${o.time}`] : []),
    ...(o.partition ? [`--partition=${o.partition}`] : []),
    ...(o.account ? [`--account=${o.account}`] : []),
    ...(o.gpusPerCell ? [`--gres=gpu:${o.gpusPerCell}`] : []),
    ...(o.sbatchArgs ?? []),
  ];
  const cmd = [o.deno ?? Deno.execPath(), ...runCellArgs(dir, "__CELL__")].map(bashQuote).join(" ")
    .replace("__CELL__", '"$cell"');
  return `#!/bin/bash
# One cell of the sweep in ${dir} per array task (deno task sweep submit --backend slurm).
${directives.map((d) => `#SBATCH ${d}`).join("\n")}

set -u
REQUEUE_EXIT=${REQUEUE_EXIT}
cell=\${SLURM_ARRAY_TASK_ID:?this script runs as an array task}
task="\${SLURM_ARRAY_JOB_ID}_\${cell}"
echo "sweep: cell $cell as $task (job \${SLURM_JOB_ID}), restart \${SLURM_RESTART_COUNT:-0}, $(date -u +%FT%TZ) on $(hostname)"

# run-cell runs as a child of this shell, not as an srun step: srun answers SIGTERM (a time limit, a
# preemption) by killing its tasks at once, and run-cell needs the TERM itself to write its checkpoint.
# Signals to this shell (the early warning USR1, ${warn} s before the time limit; scancel --batch) are
# passed on; one that reaches both (a time limit, scancel --full) arrives twice within a moment, which
# run-cell counts as one.
child=0
forward() { if [ "$child" -ne 0 ]; then kill -s "$1" "$child" 2>/dev/null; fi; }
trap 'forward USR1' USR1
trap 'forward TERM' TERM
trap 'forward INT' INT

${cmd} &
child=$!
# wait returns early when a trapped signal arrives: wait again until run-cell has exited.
while kill -0 "$child" 2>/dev/null; do wait "$child"; done
wait "$child"
rc=$?
# 75: stopped early with a checkpoint; 138: USR1 arrived before run-cell listened (nothing lost).
# A cancelled task (scancel without --signal) is not requeued: its state is no longer RUNNING.
if [ "$rc" -eq "$REQUEUE_EXIT" ] || [ "$rc" -eq 138 ]; then
  state=$(scontrol show job "$task" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -1 | cut -d= -f2)
  if [ "$state" = "RUNNING" ]; then
    echo "sweep: cell $cell stopped early (exit $rc); requeueing $task to resume from its checkpoint"
    scontrol requeue "$task" || echo "sweep: scontrol requeue $task failed: submit the sweep again to resume it"
  else
    echo "sweep: cell $cell stopped (exit $rc) and $task is \${state:-gone}: not requeued; submit the sweep again to resume it"
  fi
fi
exit "$rc"
`;
}

/** Submits `script` with sbatch; returns the job id. Throws with sbatch's message. */
export async function sbatch(script: string): Promise<string> {
  const r = await capture("sbatch", ["--parsable", script]);
  if (r.code !== 0) {
    const why = r.code === 127 ? "sbatch is not installed here (Slurm's client commands)" : r.stderr.trim();
    throw new Error(`sbatch ${script}: ${why}`);
  }
  return r.stdout.trim().split(";")[0];
}

/** One array task as squeue or sacct sees it. */
export interface SlurmTask {
  /** The array job's id. */
  jobId: string;
  /** The array index (= the cell's index). */
  index: number;
  /** PENDING, RUNNING, COMPLETED, FAILED, … */
  state: string;
  /** squeue's time used or reason, sacct's exit code. */
  detail: string;
}

/**
 * The queued and running tasks of the array jobs `jobIds` (squeue), or null when squeue is absent or
 * fails (no Slurm here).
 */
export async function squeueTasks(jobIds: readonly string[]): Promise<SlurmTask[] | null> {
  if (jobIds.length === 0) return [];
  const r = await capture("squeue", ["-h", "-r", "-o", "%F|%K|%T|%M|%r"]);
  if (r.code !== 0) return null;
  const ids = new Set(jobIds);
  const tasks: SlurmTask[] = [];
  for (const line of r.stdout.split("\n")) {
    const [jobId, k, state, time, reason] = line.trim().split("|");
    if (!ids.has(jobId) || !/^\d+$/.test(k ?? "")) continue;
    tasks.push({ jobId, index: Number(k), state, detail: state === "PENDING" ? reason : time });
  }
  return tasks;
}

/** What sacct knows of the array jobs `jobIds` (every attempt's last state), or null without accounting. */
export async function sacctTasks(jobIds: readonly string[]): Promise<SlurmTask[] | null> {
  if (jobIds.length === 0) return [];
  const r = await capture("sacct", ["-n", "-P", "-X", "-j", jobIds.join(","), "-o", "JobID,State,ExitCode"]);
  if (r.code !== 0) return null;
  const tasks: SlurmTask[] = [];
  for (const line of r.stdout.split("\n")) {
    const [id, state, exit] = line.trim().split("|");
    const m = /^(\d+)_(\d+)$/.exec(id ?? "");
    if (m) tasks.push({ jobId: m[1], index: Number(m[2]), state: state.split(" ")[0], detail: exit });
  }
  return tasks;
}
