/**
 * `deno task sweep collect` on fixture sweeps written here in the real formats (plan.json, cell folders
 * with config.json, metrics.csv, summary.json, done.json, fit.json, failed.json, a held run lock): one row
 * per cell in results.csv, the Section 5 test-error table beside the paper's numbers, the Figs. 2/8
 * time-to-fit CSV and figure (SVG and PNG), every cell not done listed under "Missing cells", and writes
 * that are atomic (a collect paused before its last rename leaves the old report in place). No GPU.
 */
import nodeAssert from "node:assert/strict";
import { join } from "node:path";
import { defaultTrainConfig, type TrainConfig } from "../experiments/section5/config.ts";
import { METRIC_COLUMNS } from "../experiments/section5/types.ts";
import { timeToFit } from "../experiments/section5/time_to_fit.ts";
import { writeCsv } from "../train/csv.ts";
import { readCsv } from "../train/csv.ts";
import { LOCK_FILE } from "../train/lock.ts";
import {
  cellId,
  type CellLabels,
  PLAN_FORMAT,
  type SweepCell,
  type SweepPlan,
  writePlan,
} from "../sweep/plan.ts";
import { collect, RESULTS_COLUMNS } from "../sweep/collect.ts";

/** What a fixture cell should look like on disk. */
interface FixtureCell {
  kind: SweepCell["kind"];
  labels: CellLabels;
  /** done: finished with these numbers; failed; running (lock held); pending (maybe with progress). */
  state: "done" | "failed" | "running" | "pending";
  testError?: number;
  trainError?: number;
  /** Section 5: a GeometrySummary in the summary, or (`report`) a `deno task geometry` report in geometry/. */
  geometry?: { means: number; weights: number | null; toMean: number; report?: { empirical: number } };
  /** Random labels: the training error at each evaluation step. */
  evals?: [number, number][];
  /** Steps logged so far (running / pending / failed cells). */
  progress?: number;
}

const ITER = 40;

function configOf(c: FixtureCell, dir: string): TrainConfig {
  const l = c.labels;
  return {
    ...defaultTrainConfig,
    dataset: l.dataset,
    loss: l.loss,
    model: l.preact ? "preact-resnet18" : "resnet18",
    width: 0.0625,
    iterations: ITER,
    batch: 16,
    augment: l.augment,
    corruption: l.fraction ?? 0,
    evalEvery: c.kind === "random-labels" ? 10 : 0,
    probeIterations: c.kind === "random-labels" ? 10 : 20,
    seed: l.seed,
    out: dir,
  };
}

function metricsRows(c: FixtureCell, upTo: number): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (let s = 10; s <= upTo; s += 10) {
    const loss = 2.5 - s / 40;
    const ev = c.evals?.find(([step]) => step === s);
    rows.push({
      step: s,
      lr: 0.1 * (1 - (s - 1) / ITER) ** 5,
      loss: c.labels.loss === "sc" ? loss * 16 : loss,
      loss_per_sample: loss,
      loss_avg: c.labels.loss === "sc" ? loss * 16 : loss,
      images_per_s: 100,
      elapsed_s: s / 10,
      ...(ev ? { train_error: ev[1], test_error: 0.5 } : {}),
    });
  }
  return rows;
}

function geometrySummary(g: NonNullable<FixtureCell["geometry"]>) {
  const stats = (mean: number) => ({
    n: 45,
    mean,
    std: 0.01,
    min: mean - 0.02,
    q1: mean,
    median: mean,
    q3: mean,
    max: mean + 0.02,
  });
  const simplexGamma = 1 - Math.acos(-1 / 9) / Math.PI;
  return {
    simplexGamma,
    acrossMeans: { ...stats(g.means), gapToSimplex: g.means - simplexGamma },
    acrossWeights: g.weights === null
      ? null
      : { ...stats(g.weights), gapToSimplex: g.weights - simplexGamma },
    toClassMeans: { ...stats(g.toMean), gapToCollapse: g.toMean - 1 },
    norms: stats(3.16),
  };
}

/** Writes a plan and its cells in `dir` as plan / run-cell / the trainer would; returns the plan. */
async function writeFixture(
  dir: string,
  fixtures: FixtureCell[],
): Promise<{ plan: SweepPlan; unlock: () => void }> {
  const cells: SweepCell[] = fixtures.map((f, index) => {
    const config = configOf(f, "");
    const id = cellId(f.kind, config);
    return {
      index,
      id,
      dir: `cells/${id}`,
      kind: f.kind,
      labels: f.labels,
      config: { ...config, out: `cells/${id}` },
    };
  });
  const plan: SweepPlan = {
    format: PLAN_FORMAT,
    grid: "fixture",
    scale: "tiny",
    createdAt: "2026-12-07T00:00:00.000Z",
    versions: { project: "test", deno: Deno.version.deno },
    cells,
  };
  await Deno.mkdir(dir, { recursive: true });
  await writePlan(dir, plan);
  const locks: Deno.FsFile[] = [];
  for (const [i, f] of fixtures.entries()) {
    const cell = cells[i], cdir = join(dir, cell.dir);
    if (f.state === "pending" && !f.progress) continue; // never started: no folder at all
    await Deno.mkdir(cdir, { recursive: true });
    await Deno.writeTextFile(join(cdir, "cell.json"), JSON.stringify(cell));
    await Deno.writeTextFile(join(cdir, "config.json"), JSON.stringify(cell.config));
    const upTo = f.state === "done"
      ? (f.evals ? Math.max(...f.evals.map((e) => e[0])) : ITER)
      : f.progress ?? 0;
    const rows = metricsRows(f, upTo);
    if (f.state === "done" && f.kind === "section5") {
      rows.push({ step: ITER, lr: 0, train_error: f.trainError, test_error: f.testError, elapsed_s: 4 });
    }
    await writeCsv(join(cdir, "metrics.csv"), rows, METRIC_COLUMNS);
    if (f.state === "running") {
      const lock = await Deno.open(join(cdir, LOCK_FILE), { read: true, write: true, create: true });
      await lock.lock(true);
      locks.push(lock);
    }
    if (f.state === "failed") {
      await Deno.writeTextFile(
        join(cdir, "failed.json"),
        JSON.stringify({
          id: cell.id,
          index: i,
          at: "2026-12-07T01:00:00Z",
          exitCode: 3,
          error: "loss diverged at step 20",
        }),
      );
    }
    if (f.state !== "done") continue;
    const fitRec = f.evals
      ? (() => {
        const evaluations = f.evals.map(([step, trainError]) => ({
          step,
          trainError,
          trainErrorClean: 0.9,
          testError: 0.5,
        }));
        const fit = timeToFit(evaluations, ITER);
        return {
          loss: f.labels.loss,
          p: f.labels.fraction,
          fit,
          evaluations,
          ended: fit.fitted ? "fitted" : "budget",
          seconds: 3,
        };
      })()
      : undefined;
    if (fitRec) await Deno.writeTextFile(join(cdir, "fit.json"), JSON.stringify(fitRec));
    const step = upTo;
    const metrics = f.kind === "section5"
      ? {
        step,
        trainError: f.trainError,
        trainErrorClean: f.trainError,
        testError: f.testError,
        ...(f.labels.loss === "sc" ? { probeLoss: 0.25 } : {}),
      }
      : { step, trainError: f.evals!.at(-1)![1], trainErrorClean: 0.9, testError: 0.5 };
    const summary = {
      status: fitRec?.fit.fitted ? "stopped" : "completed",
      step,
      iterations: ITER,
      config: cell.config,
      configHash: "0123",
      metrics,
      lastLog: rows.findLast((r) => r.loss_per_sample !== undefined),
      imagesPerSecond: 100,
      sessionSeconds: 4,
      paths: {},
      ...(f.geometry && !f.geometry.report ? { geometry: geometrySummary(f.geometry) } : {}),
    };
    if (f.geometry?.report) {
      await Deno.mkdir(join(cdir, "geometry"));
      await Deno.writeTextFile(
        join(cdir, "geometry", "summary.json"),
        JSON.stringify({
          checkpoint: join(cdir, "checkpoint.safetensors"),
          step,
          loss: f.labels.loss,
          geometry: geometrySummary(f.geometry),
          ce: null,
          sc: { empirical: f.geometry.report.empirical, boundMultisetMean: 1.25, boundIidExpectation: 1.3 },
        }),
      );
    }
    await Deno.writeTextFile(join(cdir, "summary.json"), JSON.stringify(summary));
    await Deno.writeTextFile(
      join(cdir, "done.json"),
      JSON.stringify({
        id: cell.id,
        index: i,
        finishedAt: "2026-12-07T02:00:00Z",
        elapsedSeconds: 4 + i,
        summary,
        ...(fitRec ? { fit: fitRec } : {}),
      }),
    );
  }
  return { plan, unlock: () => locks.forEach((l) => l.close()) };
}

const s5 = (loss: CellLabels["loss"], augment: boolean, extra: Partial<CellLabels> = {}): CellLabels => ({
  loss,
  dataset: "cifar10",
  augment,
  preact: false,
  seed: 0,
  ...extra,
});
const rl = (loss: CellLabels["loss"], fraction: number, seed = 0): CellLabels => ({
  loss,
  dataset: "cifar10",
  augment: false,
  preact: false,
  fraction,
  seed,
});

/** The fixture: Section 5 cells (two seeds of one, a failed, a pending, a running pre-act) and a random-label grid. */
const FIXTURE: FixtureCell[] = [
  {
    kind: "section5",
    labels: s5("ce", true),
    state: "done",
    testError: 0.1,
    trainError: 0.01,
    geometry: { means: 0.55, weights: 0.6, toMean: 0.9 },
  },
  { kind: "section5", labels: s5("ce", true, { seed: 1 }), state: "done", testError: 0.12, trainError: 0.02 },
  { kind: "section5", labels: s5("ce-fix", true), state: "done", testError: 0.09, trainError: 0.0 },
  {
    kind: "section5",
    labels: s5("sc", true),
    state: "done",
    testError: 0.08,
    trainError: 0.0,
    geometry: { means: 0.58, weights: null, toMean: 0.97, report: { empirical: 1.5 } },
  },
  { kind: "section5", labels: s5("ce", false), state: "done", testError: 0.2, trainError: 0.0 },
  { kind: "section5", labels: s5("sc", false), state: "failed", progress: 20 },
  { kind: "section5", labels: s5("ce-fix", false), state: "pending" },
  { kind: "section5", labels: s5("sc", true, { preact: true }), state: "running", progress: 30 },
  { kind: "random-labels", labels: rl("ce", 0), state: "done", evals: [[10, 0.3], [20, 0]] },
  { kind: "random-labels", labels: rl("ce", 1), state: "done", evals: [[10, 0.6], [20, 0.2], [30, 0]] },
  { kind: "random-labels", labels: rl("sc", 0), state: "done", evals: [[10, 0.1], [20, 0]] },
  { kind: "random-labels", labels: rl("sc", 0, 1), state: "done", evals: [[10, 0.1], [20, 0.05], [30, 0]] },
  {
    kind: "random-labels",
    labels: rl("sc", 1),
    state: "done",
    evals: [[10, 0.9], [20, 0.8], [30, 0.8], [40, 0.7]],
  },
  { kind: "random-labels", labels: rl("sc", 0.5), state: "pending", progress: 10, evals: [[10, 0.5]] },
];

const PERMS = { read: true, write: true, env: true, run: false, net: false } as const;

Deno.test({
  name: "sweep collect: results.csv, the test-error table beside the paper, time to fit, missing cells",
  permissions: PERMS,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sweep-collect-" });
    const { plan, unlock } = await writeFixture(dir, FIXTURE);
    try {
      const res = await collect(dir, { quiet: true, now: new Date("2026-12-07T03:00:00Z") });
      nodeAssert.deepEqual(res.counts, { done: 10, failed: 1, pending: 2, running: 1 });

      // results.csv: one row per cell of the plan, in index order, with every column.
      const rows = await readCsv(join(dir, "results.csv"), { numbers: true });
      nodeAssert.equal(rows.length, FIXTURE.length);
      nodeAssert.deepEqual(Object.keys(rows[0]), [...RESULTS_COLUMNS]);
      nodeAssert.deepEqual(rows.map((r) => r.index), FIXTURE.map((_, i) => i));
      nodeAssert.deepEqual(rows.map((r) => String(r.id)), plan.cells.map((c) => c.id));
      nodeAssert.deepEqual(rows.map((r) => r.state), FIXTURE.map((f) => f.state));
      const ce0 = rows[0];
      nodeAssert.equal(ce0.test_error, 0.1);
      nodeAssert.equal(ce0.test_accuracy, 0.9);
      nodeAssert.equal(ce0.train_error, 0.01);
      nodeAssert.equal(ce0.step, ITER);
      nodeAssert.equal(ce0.final_loss, 2.5 - 40 / 40);
      nodeAssert.equal(ce0.gamma_across_means, 0.55);
      nodeAssert.equal(ce0.gamma_across_weights, 0.6);
      nodeAssert.equal(ce0.gamma_to_class_means, 0.9);
      nodeAssert.equal(ce0.probe_test_accuracy, "", "CE has no probe");
      nodeAssert.equal(ce0.elapsed_s, 4);
      const sc = rows[3];
      nodeAssert.equal(sc.probe_test_accuracy, 0.92);
      nodeAssert.equal(sc.probe_loss, 0.25);
      nodeAssert.equal(sc.gamma_across_weights, "");
      nodeAssert.equal(sc.gamma_across_means, 0.58, "from geometry/summary.json");
      nodeAssert.equal(sc.loss_empirical, 1.5);
      nodeAssert.equal(sc.loss_optimum, 1.25);
      nodeAssert.equal(ce0.loss_empirical, "");
      nodeAssert.equal(rows[5].failure, "exit 3: loss diverged at step 20");
      nodeAssert.equal(rows[5].step, 20);
      nodeAssert.equal(rows[7].step, 30, "a running cell shows its progress");
      nodeAssert.equal(rows[6].step, 0);
      nodeAssert.equal(rows[8].fitted, "true");
      nodeAssert.equal(rows[8].time_to_fit, 20);
      nodeAssert.equal(rows[9].time_to_fit, 30);
      nodeAssert.equal(rows[12].fitted, "false");
      nodeAssert.equal(rows[12].time_to_fit, "");
      nodeAssert.equal(rows[12].fit_cap, ITER);
      nodeAssert.equal(rows[13].fraction, 0.5);

      // The test-error table: two seeds averaged; the paper's CIFAR-10 numbers beside ours.
      const te = await readCsv(join(dir, "test_error.csv"), { numbers: true });
      const find = (loss: string, augment: boolean, preact = false) =>
        te.find((r) => r.loss === loss && r.augment === String(augment) && r.preact === String(preact))!;
      nodeAssert.equal(te.length, 7, "six standard configurations and the pre-activation one");
      nodeAssert.ok(Math.abs((find("ce", true).test_error_pct as number) - 11) < 1e-9);
      nodeAssert.ok(Math.abs((find("ce", true).test_error_pct_std as number) - 1) < 1e-9);
      nodeAssert.equal(find("ce", true).cells_done, 2);
      nodeAssert.equal(find("ce", true).paper_test_error_pct, 6.3);
      nodeAssert.equal(find("ce-fix", true).paper_test_error_pct, 6.2);
      nodeAssert.equal(find("sc", true).paper_test_error_pct, 5.7);
      nodeAssert.equal(find("ce", false).paper_test_error_pct, 16.4);
      nodeAssert.ok(Math.abs((find("sc", true).difference_pct as number) - (8 - 5.7)) < 1e-9);
      nodeAssert.equal(find("sc", false).cells_done, 0);
      nodeAssert.equal(find("sc", false).test_error_pct, "");
      nodeAssert.equal(
        find("sc", true, true).paper_test_error_pct,
        "",
        "the paper has no pre-activation number",
      );

      const report = await Deno.readTextFile(join(dir, "report.md"));
      nodeAssert.match(
        report,
        /\| Loss \| ours, w\/ aug\. \| paper, w\/ aug\. \| ours, w\/o aug\. \| paper, w\/o aug\. \| ours, pre-act, w\/ aug\. \|/,
      );
      nodeAssert.match(report, /\| CE \| 11\.0 ± 1\.0 \(2 seeds\) \| 6\.3 \| 20\.0 \| 16\.4 \| {2}\|/);
      nodeAssert.match(
        report,
        /\| SC \| 8\.0 \| 5\.7 \| not done \(0 of 1\) \| 13\.8 \| not done \(0 of 1\) \|/,
      );
      nodeAssert.match(report, /10 of 14 cells done/);
      nodeAssert.match(report, /γ across class means/);
      nodeAssert.match(report, /\| 0\.5500 \| 0\.6000 \| 0\.9000 \| 10\.0 \|/);
      nodeAssert.match(
        report,
        /\| #3 SC, cifar10, w\/ aug\., seed 0 \| 1\.50000 \| 1\.25000 \| 824\.731 \| 824\.487 \|/,
      );

      // Missing cells: every cell not done, with state, index and id; never dropped.
      const missing = report.slice(report.indexOf("## Missing cells"));
      for (const [i, f] of FIXTURE.entries()) {
        const id = plan.cells[i].id;
        if (f.state === "done") nodeAssert.ok(!missing.includes(id), `done cell ${i} is not missing`);
        else nodeAssert.match(missing, new RegExp(`\\| ${i} \\| ${id} \\| ${f.state} \\|`));
      }
      nodeAssert.match(missing, /exit 3: loss diverged at step 20/);
      nodeAssert.deepEqual(
        res.missing.map((m) => [m.index, m.state]),
        [[5, "failed"], [6, "pending"], [7, "running"], [13, "pending"]],
      );

      // Figs. 2/8: the CSV, the limits beside the paper's (SC fits up to 0.8 on CIFAR-10), SVG and PNG.
      const fit = await readCsv(join(dir, "time_to_fit.csv"), { numbers: true });
      const pt = (loss: string, p: number) => fit.find((r) => r.loss === loss && r.p === p)!;
      nodeAssert.equal(pt("sc", 0).time_to_fit, 25, "two seeds (20, 30) averaged");
      nodeAssert.equal(pt("sc", 0).seeds_time_to_fit, "20 30");
      nodeAssert.equal(pt("sc", 1).fitted, "false");
      nodeAssert.equal(pt("sc", 0.5).cells_done, 0);
      nodeAssert.equal(pt("sc", 0.5).fitted, "");
      nodeAssert.equal(pt("ce", 1).time_to_fit, 30);
      nodeAssert.match(report, /\| cifar10 \| SC \| 0 \| 1 \| 0\.8 \(/);
      nodeAssert.match(report, /\| cifar10 \| CE \| 1 \| none \(all fitted\) \| — \|/);
      const evals = await readCsv(join(dir, "evaluations.csv"), { numbers: true });
      nodeAssert.equal(evals.length, 2 + 3 + 2 + 3 + 4 + 1, "every evaluation, the unfinished cell's too");
      nodeAssert.equal(res.paths.figures.length, 1);
      const svg = await Deno.readTextFile(join(dir, "time_to_fit_cifar10.svg"));
      nodeAssert.match(svg, /^<svg/);
      nodeAssert.match(svg, /label corruption p/);
      const png = await Deno.readFile(join(dir, "time_to_fit_cifar10.png"));
      nodeAssert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
      nodeAssert.match(report, /!\[time to fit, cifar10\]\(time_to_fit_cifar10\.png\)/);

      // Nothing half-written is left, and the sweep's own files are untouched.
      for await (const e of Deno.readDir(dir)) nodeAssert.ok(!/\.tmp-/.test(e.name), e.name);
      nodeAssert.deepEqual(JSON.parse(await Deno.readTextFile(join(dir, "plan.json"))), plan);

      // Collecting again gives the same files (the time stamp aside).
      const before = await Deno.readTextFile(join(dir, "results.csv"));
      await collect(dir, { quiet: true, now: new Date("2026-12-07T03:00:00Z") });
      nodeAssert.equal(await Deno.readTextFile(join(dir, "results.csv")), before);
      nodeAssert.equal(await Deno.readTextFile(join(dir, "report.md")), report);
    } finally {
      unlock();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "sweep collect: a sweep with nothing done yet lists every cell as missing and writes no figure",
  permissions: PERMS,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sweep-collect-" });
    const fixtures: FixtureCell[] = [
      { kind: "random-labels", labels: rl("ce", 0), state: "pending" },
      { kind: "random-labels", labels: rl("sc", 0), state: "pending", progress: 10 },
    ];
    const { unlock } = await writeFixture(dir, fixtures);
    try {
      const res = await collect(dir, { quiet: true });
      nodeAssert.deepEqual(res.missing.map((m) => m.state), ["pending", "pending"]);
      nodeAssert.equal(res.paths.figures.length, 0);
      nodeAssert.equal(res.paths.testError, undefined, "no Section 5 cells: no table");
      const report = await Deno.readTextFile(join(dir, "report.md"));
      nodeAssert.match(report, /0 of 2 cells done/);
      nodeAssert.match(report, /no figure: no random-label cell is done/);
      nodeAssert.equal((await readCsv(join(dir, "results.csv"))).length, 2);
    } finally {
      unlock();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "sweep collect: writes are atomic (paused before the report's rename, the old report.md is whole)",
  permissions: { ...PERMS, run: true },
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sweep-collect-" });
    const { unlock } = await writeFixture(dir, FIXTURE.slice(0, 5));
    try {
      await Deno.writeTextFile(join(dir, "report.md"), "old report\n");
      await Deno.writeTextFile(join(dir, "results.csv"), "old\n");
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", "--allow-write", "--allow-env", "sweep/main.ts", "collect", dir],
        env: { SUPCON_FAULT_POINT: "write:report.md", SUPCON_FAULT_HOLD: "1" },
        cwd: new URL("..", import.meta.url).pathname,
        stdout: "null",
        stderr: "piped",
      }).spawn();
      let err = "";
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      while (!err.includes("fault point: write:report.md")) {
        const { value, done } = await reader.read();
        if (done) break;
        err += value;
      }
      nodeAssert.match(err, /fault point: write:report\.md/);
      // Paused between writing report.md's bytes and renaming them: the old one is still whole.
      nodeAssert.equal(await Deno.readTextFile(join(dir, "report.md")), "old report\n");
      const tmps = [...Deno.readDirSync(dir)].filter((e) => /^report\.md\.tmp-/.test(e.name));
      nodeAssert.equal(tmps.length, 1);
      nodeAssert.match(await Deno.readTextFile(join(dir, tmps[0].name)), /^# Sweep fixture/);
      // results.csv was renamed into place before: it is the new one, whole.
      nodeAssert.equal((await readCsv(join(dir, "results.csv"))).length, 5);
      child.kill("SIGKILL");
      await reader.cancel();
      await child.status;
      nodeAssert.equal(await Deno.readTextFile(join(dir, "report.md")), "old report\n");
    } finally {
      unlock();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
