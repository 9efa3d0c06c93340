/**
 * `deno task sweep` end to end, on a real single-node Slurm (tests/slurm_cluster.ts) and with the local
 * backend: a tiny grid (synthetic data, ResNet-18 ×1/16, 24 iterations, 4 cells) is planned, submitted
 * and run to completion; one cell is paused at step 12 (SUPCON_FAULT_POINT, scoped to that cell by
 * SUPCON_SWEEP_FAULT_CELL) and signalled there — on Slurm with `scancel --batch --signal=TERM`, locally with
 * the early warning SIGUSR1 — so it checkpoints, exits 75, is requeued and resumes; it must finish with
 * exactly the numbers of the same cell run without interruption (the other backend's, or a fresh
 * run-cell). Submitting again starts nothing; the finished sweep collects. Every command runs with the permissions of deno.json's
 * `sweep` task.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type SlurmCluster, slurmUnavailable, startSlurm } from "./slurm_cluster.ts";
import { readPlan, type SweepPlan } from "../sweep/plan.ts";
import type { JobsFile } from "../sweep/jobs.ts";
import type { StatusRow } from "../sweep/status.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const TASK = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json"))).tasks.sweep as string;
/** The task's `deno run` flags (the test runs what `deno task sweep` runs, with this Deno). */
const FLAGS = TASK.split(/\s+/).slice(2, -1);
const PAUSE = "step#12";

/** The 4-cell tiny grid. */
const GRID = {
  kind: "section5",
  scale: "tiny",
  axes: { loss: ["ce", "sc"], augment: [true, false] },
};

const BASE_ENV = { SUPCON_TUNING: "off" };

async function sweep(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...FLAGS, join(ROOT, "sweep", "main.ts"), ...args],
    cwd: ROOT,
    env: { ...BASE_ENV, ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

async function plan(dir: string): Promise<SweepPlan> {
  const gridFile = join(dir, "..", `${dir.split("/").pop()}-grid.json`);
  await Deno.writeTextFile(gridFile, JSON.stringify(GRID));
  const r = await sweep(["plan", "--grid", gridFile, "--out", dir]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /planned 4 section5 cells/);
  return await readPlan(dir);
}

async function status(dir: string, env: Record<string, string> = {}): Promise<StatusRow[]> {
  const r = await sweep(["status", dir, "--json"], env);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out);
}

async function waitFor(
  what: string,
  ok: () => Promise<boolean> | boolean,
  timeoutMs: number,
  info = () => "",
) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}\n${info()}`);
}

function read(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

/** A cell's final numbers: the summary's evaluation and every logged loss (not times). */
function finals(planDir: string, cellDir: string): unknown {
  const summary = JSON.parse(read(join(planDir, cellDir, "summary.json")));
  const rows = read(join(planDir, cellDir, "metrics.csv")).trim().split("\n");
  const cols = rows[0].split(",");
  const keep = cols.map((c, i) => (["images_per_s", "elapsed_s"].includes(c) ? -1 : i)).filter((i) => i >= 0);
  return {
    step: summary.step,
    metrics: summary.metrics,
    rows: rows.map((r) => keep.map((i) => r.split(",")[i]).join(",")),
  };
}

/** Plan folders of the two backend tests, and the cell each interrupted. */
const runs: { dir: string; interrupted: number }[] = [];
const tmp = await Deno.makeTempDir({ prefix: "supcon-sweep-test-" });
const slurmSkip = await slurmUnavailable();

Deno.test({
  name: `sweep on Slurm: plan, submit, scancel --batch --signal=TERM one cell, requeue, resume, submit again${
    slurmSkip ? ` (skipped: ${slurmSkip})` : ""
  }`,
  ignore: slurmSkip !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster: SlurmCluster = await startSlurm();
    try {
      const dir = join(tmp, "slurm");
      const p = await plan(dir);
      // The last cell: it starts when no task of the array is pending any more (signalling a task
      // while others wait makes Slurm 22.05's scancel repeat the signal for ~50 s; sweep/slurm.ts).
      const victim = 3;
      const env = { ...cluster.env, SUPCON_SWEEP_FAULT_CELL: String(victim), SUPCON_FAULT_POINT: PAUSE };
      const sub = await sweep([
        "submit",
        dir,
        "--backend",
        "slurm",
        "--max-parallel",
        "2",
        "--time",
        "00:10:00",
      ], env);
      assert.equal(sub.code, 0, sub.err);
      const jobs: JobsFile = JSON.parse(read(join(dir, "jobs.json")));
      assert.equal(jobs.submissions.length, 1);
      const jobId = jobs.submissions[0].jobId!;
      assert.match(sub.out, new RegExp(`submitted 4 of 4 cells as Slurm array job ${jobId}`));
      const script = read(join(dir, "sweep.sbatch"));
      for (const line of ["--array=0-3%2", "--signal=B:USR1@300", "--requeue", "--time=00:10:00"]) {
        assert.ok(script.includes(`#SBATCH ${line}`), `sweep.sbatch lacks ${line}`);
      }
      assert.ok(script.includes(`--output=${join(dir, "logs", "%A_%a.out")}`));
      const log = join(dir, "logs", `${jobId}_${victim}.out`);
      await waitFor(
        "the cell to pause at step 12",
        () => read(log).includes("fault point: step"),
        120_000,
        () => read(log),
      );
      // While it runs, submitting again starts nothing (every cell is running or queued).
      const again = await sweep(["submit", dir, "--backend", "slurm"], cluster.env);
      assert.equal(again.code, 0, again.err);
      assert.match(again.out, /nothing to submit/);
      const row = (await status(dir, cluster.env))[victim];
      assert.equal(row.state, "running");
      assert.match(row.slurm ?? "", new RegExp(`^${jobId}_${victim} RUNNING`));
      // --batch: a plain `scancel --signal` reaches job steps only, and a cell is the batch script's child.
      const sc = await new Deno.Command("scancel", {
        args: ["--batch", "--signal=TERM", `${jobId}_${victim}`],
        env: cluster.env,
      }).output();
      assert.ok(sc.success, new TextDecoder().decode(sc.stderr));
      await waitFor(
        "every cell done",
        async () => (await status(dir, cluster.env)).every((r) => r.state === "done"),
        240_000,
        () => read(log),
      );
      const text = read(log);
      assert.match(
        text,
        new RegExp(`stopped: cell ${victim} .*SIGTERM at step 12 of 24; checkpoint written`),
      );
      assert.match(text, new RegExp(`requeueing ${jobId}_${victim}`));
      assert.match(text, /restart 1/);
      const done = JSON.parse(read(join(dir, p.cells[victim].dir, "done.json")));
      assert.equal(done.summary.step, 24);
      assert.equal(done.summary.status, "completed");
      const last = await sweep(["submit", dir, "--backend", "slurm"], cluster.env);
      assert.equal(last.code, 0, last.err);
      assert.match(last.out, /all 4 cells are done; nothing submitted/);
      assert.equal((JSON.parse(read(join(dir, "jobs.json"))) as JobsFile).submissions.length, 1);
      runs.push({ dir, interrupted: victim });
    } finally {
      await cluster.stop();
    }
  },
});

Deno.test({
  name:
    "sweep locally: plan, submit --backend local, SIGUSR1 (early warning) to one cell, resume, submit again",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = join(tmp, "local");
    const p = await plan(dir);
    const victim = 2;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...FLAGS,
        join(ROOT, "sweep", "main.ts"),
        "submit",
        dir,
        "--backend",
        "local",
        "--max-parallel",
        "2",
      ],
      cwd: ROOT,
      env: { ...BASE_ENV, SUPCON_SWEEP_FAULT_CELL: String(victim), SUPCON_FAULT_POINT: PAUSE },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = child.output();
    const log = join(dir, "logs", `local_${victim}.out`);
    await waitFor(
      "the cell to pause at step 12",
      () => read(log).includes("fault point: step"),
      120_000,
      () => read(log),
    );
    const lock = JSON.parse(read(join(dir, p.cells[victim].dir, ".lock")));
    assert.equal((await status(dir))[victim].state, "running");
    Deno.kill(lock.pid, "SIGUSR1");
    const r = await output;
    const out = new TextDecoder().decode(r.stdout);
    assert.equal(r.code, 0, out + new TextDecoder().decode(r.stderr));
    assert.match(
      out,
      new RegExp(`cell ${victim}: stopped early with a checkpoint; starting it again to resume`),
    );
    assert.match(read(log), /stopped: cell 2 .*SIGUSR1 at step 12 of 24; checkpoint written/);
    const rows = await status(dir);
    assert.deepEqual(rows.map((x) => x.state), ["done", "done", "done", "done"]);
    assert.deepEqual(rows.map((x) => x.step), [24, 24, 24, 24]);
    const again = await sweep(["submit", dir, "--backend", "local"]);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /all 4 cells are done; nothing submitted/);
    runs.push({ dir, interrupted: victim });
  },
});

Deno.test({
  name: "sweep locally: a random-labels grid runs and collects Figs. 2/8 (time to fit: CSV, SVG, PNG)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = join(tmp, "random-labels");
    const gridFile = join(tmp, "random-labels-grid.json");
    const grid = {
      kind: "random-labels",
      scale: "tiny",
      axes: { loss: ["ce", "ce-fix"], corruption: [0, 1] },
    };
    await Deno.writeTextFile(gridFile, JSON.stringify(grid));
    const planned = await sweep(["plan", "--grid", gridFile, "--out", dir]);
    assert.equal(planned.code, 0, planned.err);
    assert.match(planned.out, /planned 4 random-labels cells/);
    const sub = await sweep(["submit", dir, "--backend", "local", "--max-parallel", "2"]);
    assert.equal(sub.code, 0, sub.err);
    assert.ok((await status(dir)).every((r) => r.state === "done"), "every cell done");
    const c = await sweep(["collect", dir]);
    assert.equal(c.code, 0, c.err);
    const fit = read(join(dir, "time_to_fit.csv")).trim().split("\n");
    assert.equal(fit.length, 1 + 4, `one time-to-fit row per (loss, p):\n${fit.join("\n")}`);
    const svg = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
      /^time_to_fit_.*\.(svg|png)$/.test(n)
    );
    assert.equal(svg.length, 2, `the figure as SVG and PNG: ${svg}`);
    assert.ok(read(join(dir, svg.find((n) => n.endsWith(".svg"))!)).includes("<svg"));
    assert.ok(Deno.statSync(join(dir, svg.find((n) => n.endsWith(".png"))!)).size > 1000);
    assert.match(read(join(dir, "report.md")), /time_to_fit_/);
  },
});

Deno.test({
  name: "sweep: an interrupted and resumed cell ends with exactly the numbers of an uninterrupted run",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    try {
      await compareAndCollect();
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

async function compareAndCollect(): Promise<void> {
  assert.ok(runs.length > 0, "no sweep ran");
  for (const { dir, interrupted } of runs) {
    const p = await readPlan(dir);
    const cell = p.cells[interrupted];
    // The other backend ran this cell without interruption; else run it here.
    let refDir = runs.find((r) => r.dir !== dir && r.interrupted !== interrupted)?.dir;
    if (!refDir) {
      refDir = join(tmp, `reference-${interrupted}`);
      await plan(refDir);
      const r = await sweep(["run-cell", refDir, String(interrupted)]);
      assert.equal(r.code, 0, r.err);
    }
    assert.deepEqual(finals(dir, cell.dir), finals(refDir, cell.dir), `cell ${interrupted} of ${dir}`);
    // And the finished sweep collects: one results.csv row per cell, the test-error table, report.md.
    const c = await sweep(["collect", dir]);
    assert.equal(c.code, 0, c.err);
    assert.equal(read(join(dir, "results.csv")).trim().split("\n").length, 1 + p.cells.length);
    assert.ok(read(join(dir, "test_error.csv")).length > 0);
    assert.ok(read(join(dir, "report.md")).length > 0);
  }
}
