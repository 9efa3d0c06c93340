/**
 * `deno task sweep status DIR [--json]`: one row per cell (index, id, labels, state, step, last loss,
 * elapsed) from the cell folders, plus what Slurm says of its array task (squeue, else sacct) when the
 * sweep was submitted there and Slurm's commands are here.
 * @module
 */
import { parseArgs } from "node:util";
import { UsageError } from "./errors.ts";
import { readJobs, slurmJobIds } from "./jobs.ts";
import { cellProgress, type CellState, cellState, readPlan, type SweepPlan } from "./plan.ts";
import { sacctTasks, type SlurmTask, squeueTasks } from "./slurm.ts";

/** One row of the status. */
export interface StatusRow {
  /** Cell index. */
  index: number;
  /** Cell id. */
  id: string;
  /** Kind. */
  kind: string;
  /** Loss. */
  loss: string;
  /** Dataset. */
  dataset: string;
  /** Augmentation. */
  augment: boolean;
  /** Pre-activation ResNet. */
  preact: boolean;
  /** Random labels: corruption fraction. */
  fraction: number | null;
  /** Seed. */
  seed: number;
  /** From the cell folder. */
  state: CellState;
  /** Last logged step. */
  step: number;
  /** Planned iterations. */
  iterations: number;
  /** Last logged loss per sample. */
  loss_last: number | null;
  /** Seconds of training so far. */
  elapsed_s: number | null;
  /** Slurm's view of the cell's latest array task ("RUNNING 0:42", "PENDING BeginTime", …), or null. */
  slurm: string | null;
}

/** The status of every cell of the plan in `dir`, and whether Slurm was asked. */
export async function sweepStatus(
  dir: string,
  plan?: SweepPlan,
): Promise<{ rows: StatusRow[]; slurm: "squeue" | "none" }> {
  plan ??= await readPlan(dir);
  const ids = slurmJobIds(await readJobs(dir));
  const queued = ids.length ? await squeueTasks(ids) : null;
  const accounted = ids.length ? await sacctTasks(ids) : null;
  // The newest submission's task wins (job ids grow).
  const byIndex = new Map<number, SlurmTask>();
  for (const t of [...(accounted ?? []), ...(queued ?? [])]) {
    const prev = byIndex.get(t.index);
    if (!prev || Number(t.jobId) >= Number(prev.jobId)) byIndex.set(t.index, t);
  }
  const rows: StatusRow[] = [];
  for (const cell of plan.cells) {
    const p = await cellProgress(dir, cell);
    const t = byIndex.get(cell.index);
    rows.push({
      index: cell.index,
      id: cell.id,
      kind: cell.kind,
      loss: cell.labels.loss,
      dataset: cell.labels.dataset,
      augment: cell.labels.augment,
      preact: cell.labels.preact,
      fraction: cell.labels.fraction ?? null,
      seed: cell.labels.seed,
      state: cellState(dir, cell),
      step: p.step,
      iterations: p.iterations,
      loss_last: p.loss,
      elapsed_s: p.elapsedSeconds,
      slurm: t ? `${t.jobId}_${t.index} ${t.state}${t.detail ? ` ${t.detail}` : ""}` : null,
    });
  }
  return { rows, slurm: queued === null ? "none" : "squeue" };
}

function hms(s: number | null): string {
  if (s === null) return "";
  const t = Math.round(s);
  const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}`;
}

/** The rows as an aligned text table with a count per state below. */
export function statusTable(rows: readonly StatusRow[]): string {
  const header = [
    "#",
    "id",
    "loss",
    "dataset",
    "aug",
    "preact",
    "p",
    "seed",
    "state",
    "step",
    "loss",
    "elapsed",
    "slurm",
  ];
  const body = rows.map((r) => [
    String(r.index),
    r.id,
    r.loss,
    r.dataset,
    r.augment ? "yes" : "no",
    r.preact ? "yes" : "no",
    r.fraction === null ? "" : String(r.fraction),
    String(r.seed),
    r.state,
    `${r.step}/${r.iterations}`,
    r.loss_last === null ? "" : r.loss_last.toPrecision(4),
    hms(r.elapsed_s),
    r.slurm ?? "",
  ]);
  const width = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cols: string[]) => cols.map((c, i) => c.padEnd(width[i])).join("  ").trimEnd();
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
  const totals = ["done", "running", "pending", "failed"].map((s) => `${counts.get(s) ?? 0} ${s}`).join(", ");
  return [line(header), ...body.map(line), "", `${rows.length} cells: ${totals}`].join("\n");
}

/** The status verb: returns the exit code. */
export async function statusMain(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: "boolean" } },
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError("status: usage: status DIR [--json]");
  const { rows } = await sweepStatus(positionals[0]);
  console.log(values.json ? JSON.stringify(rows) : statusTable(rows));
  return 0;
}
