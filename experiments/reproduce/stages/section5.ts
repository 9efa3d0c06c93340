/**
 * Stage 6 of `deno task reproduce`: Section 5. ResNet-18 trained with CE, CE-fix and SC through
 * `trainRun(config)`, then the Fig. 7 geometry and the Section 5.2 bounds of each checkpoint through the
 * geometry script's `run(config)`; the checks are in `section5_checks.ts`.
 * @module
 */
import { join } from "node:path";
import { trainRun } from "../../section5/trainer.ts";
import type { TrainConfig } from "../../section5/config.ts";
import { defaultGeometryConfig, run as runGeometry } from "../../geometry.ts";
import { PAPER_SECTION_5_2, PAPER_TEST_ERROR, PAPER_TRAINING } from "../../paper.ts";
import { fmtNum, fmtPct, fmtSeconds, type MarkdownReport } from "../../report.ts";
import { command, LOSS_LABEL, type StageBody, type StageContext, type StageFn } from "../stage.ts";
import { type Mode, type Section5Plan, trainFlags } from "../plan.ts";
import {
  ceBoundChecks,
  findRun,
  geometryChecks,
  LOSSES,
  type LossName,
  scBoundChecks,
  type Section5Run,
  section5Scale,
  simplexGamma,
  testErrorChecks,
} from "./section5_checks.ts";

/** The Setting table: ours next to the paper's. */
function settingRows(p: Section5Plan, mode: Mode): string[][] {
  const t = p.train, P = PAPER_TRAINING;
  const n = t.dataset === "synthetic"
    ? `${t.syntheticN} (synthetic)`
    : t.trainSubset > 0
    ? `${t.trainSubset} (balanced subset)`
    : P.trainImages.toLocaleString("en-US");
  const nt = t.dataset === "synthetic"
    ? `${t.syntheticTestN}`
    : t.testSubset > 0
    ? `first ${t.testSubset}`
    : P.testImages.toLocaleString("en-US");
  return [
    ["Data", p.data.dataset === "cifar10" ? "CIFAR-10" : "synthetic (no download)", "CIFAR-10, CIFAR-100"],
    ["Training images", n, P.trainImages.toLocaleString("en-US")],
    ["Test images", nt, P.testImages.toLocaleString("en-US")],
    [
      "Encoder",
      `ResNet-18 ×${t.width} (feature dim ${Math.round(P.featureDim * t.width)})`,
      `ResNet-18 (${P.featureDim}-d)`,
    ],
    [
      "Iterations × batch",
      `${t.iterations} × ${t.batch} (i.i.d. with replacement)`,
      `${P.iterations.toLocaleString("en-US")} × ${P.batch}`,
    ],
    ["SGD", `lr ${t.lr}·(1 − t/T)^${t.lrPower}, momentum ${t.momentum}, wd ${t.weightDecay}`, "the same"],
    ["Augmentation", p.augment.map((a) => (a ? "crop + flip" : "none")).join(", then "), "with and without"],
    [
      "SC",
      `τ = ${t.tau}; probe ${t.probeIterations} iterations`,
      `τ = ${P.tau}; probe ${P.probeIterations} iterations`,
    ],
    [
      "SC loss estimate",
      `${p.geometry.scBatches} batches of b = ${t.batch}` +
      (p.geometry.scSource === "features" ? " from one extraction of augmented features" : ""),
      `${PAPER_SECTION_5_2.sc.batches} batches of ${P.batch}`,
    ],
    ["Mode", mode, "—"],
  ];
}

/** Trains one loss (and measures its geometry when trained with augmentation). */
async function trainOne(ctx: StageContext, run: Section5Run, label: string): Promise<void> {
  const plan = ctx.plan.section5!;
  const name = LOSS_LABEL[run.loss];
  ctx.log(`section5 (${label}): train ${name}${run.augment ? "" : " without augmentation"} → ${run.dir}`);
  const t0 = performance.now();
  try {
    run.result = await trainRun(run.config);
  } catch (e) {
    if (!(e instanceof Error && e.name === "NonFiniteLossError")) throw e;
    run.error = e.message;
    ctx.log(`section5: ${name} diverged: ${e.message}`);
  }
  run.seconds = (performance.now() - t0) / 1000;
  const m = run.result?.metrics;
  if (m) {
    ctx.log(
      `section5: ${name} test error ${fmtPct(m.testError)}% (train ${fmtPct(m.trainError)}%) in ${
        fmtSeconds(run.seconds)
      }`,
    );
  }
  if (!run.augment || run.result?.status !== "completed") return;
  const t1 = performance.now();
  ctx.log(`section5 (${label}): geometry of ${name}`);
  run.geometry = await runGeometry({
    ...defaultGeometryConfig,
    checkpoint: run.result.paths.checkpoint,
    out: join(run.dir, "geometry"),
    scBatches: plan.geometry.scBatches,
    scSource: plan.geometry.scSource,
    evalBatch: plan.geometry.evalBatch,
    seed: ctx.cfg.seed,
    quiet: ctx.cfg.quiet,
    json: false,
  });
  run.geometrySeconds = (performance.now() - t1) / 1000;
}

/** Stage 6: Section 5 (training, Fig. 7 geometry, Section 5.2). */
export const section5Stage: StageFn = async (ctx): Promise<StageBody> => {
  const plan = ctx.plan.section5!;
  const runs: Section5Run[] = [];
  const total = plan.augment.length * plan.losses.length;
  for (const augment of plan.augment) {
    for (const loss of plan.losses) {
      const dir = join(ctx.dir, `${loss}${augment ? "" : "-noaug"}`);
      const config: TrainConfig = { ...plan.train, loss, augment, out: join(dir, "train") };
      const run: Section5Run = {
        loss,
        augment,
        dir,
        config,
        seconds: 0,
        result: null,
        error: null,
        geometry: null,
        geometrySeconds: 0,
      };
      runs.push(run);
      await trainOne(ctx, run, `${runs.length}/${total}`);
    }
  }
  return section5Body(ctx, plan, runs);
};

/** The stage's summary: the plan and each run's outcome. */
function section5Summary(plan: Section5Plan, runs: readonly Section5Run[]) {
  return {
    data: plan.data,
    trainConfig: plan.train,
    geometrySettings: plan.geometry,
    runs: runs.map((r) => ({
      loss: r.loss,
      augment: r.augment,
      dir: r.dir,
      seconds: r.seconds,
      geometrySeconds: r.geometrySeconds,
      status: r.result?.status ?? "diverged",
      error: r.error,
      metrics: r.result?.metrics ?? null,
      imagesPerSecond: r.result?.imagesPerSecond ?? null,
      geometry: r.geometry
        ? {
          geometry: r.geometry.geometry,
          ce: r.geometry.ce,
          sc: r.geometry.sc,
          trainError: r.geometry.trainError,
        }
        : null,
    })),
  };
}

/** The commands that repeat each run. */
function runBullets(plan: Section5Plan, runs: readonly Section5Run[]): string[] {
  const g = plan.geometry;
  return runs.map((x) =>
    `${LOSS_LABEL[x.loss]}${x.augment ? "" : " (no augmentation)"}: \`${
      command("train", [...trainFlags(x.config), "--out", x.config.out])
    }\`` +
    (x.geometry
      ? `, then \`deno task geometry --checkpoint ${x.config.out} --out ${join(x.dir, "geometry")} ` +
        `--sc-batches ${g.scBatches} --sc-source ${g.scSource} --eval-batch ${g.evalBatch}\``
      : "") +
    ` (${fmtSeconds(x.seconds + x.geometrySeconds)})`
  );
}

/** The test-error table: ours next to the paper's CIFAR-10 column. */
function testErrorRows(runs: readonly Section5Run[]): string[][] {
  return LOSSES.map((l) => {
    const a = findRun(runs, l, true)?.result?.metrics, n = findRun(runs, l, false)?.result?.metrics;
    return [
      LOSS_LABEL[l],
      `${fmtPct(a?.testError)}${n ? ` (w/o aug ${fmtPct(n.testError)})` : ""}`,
      fmtPct(a?.trainError),
      PAPER_TEST_ERROR.cifar10.aug[l].toFixed(1),
      PAPER_TEST_ERROR.cifar10.noAug[l].toFixed(1),
    ];
  });
}

function section5Body(ctx: StageContext, plan: Section5Plan, runs: Section5Run[]): StageBody {
  const mode = ctx.plan.mode;
  const scale = section5Scale(plan, mode);
  const geo = (loss: LossName) => findRun(runs, loss, true)?.geometry ?? null;
  const { K, gs } = simplexGamma(geo);
  const errChecks = testErrorChecks(runs, scale);
  const geoChecks = geometryChecks(geo, gs, scale);
  const gsc = geo("sc"), gce = geo("ce");
  const boundChecks = [
    ...(gsc?.sc ? scBoundChecks(gsc.sc, scale) : []),
    ...(gce?.ce ? ceBoundChecks(gce.ce, scale) : []),
  ];
  const render = (r: MarkdownReport, reportDir: string) => {
    r.paragraph(
      `Data: ${plan.data.note}. ${
        scale.paperScale
          ? "Paper-scale settings (`--full`)."
          : `A **reduced** run (${scale.reduced}), sized for the software adapter: its numbers are reported next to the paper's ` +
            "full-scale ones, not expected to match them, and never fail the reproduction."
      }`,
    );
    r.heading(3, "Setting");
    r.table(["", "Ours", "Paper"], settingRows(plan, mode));
    r.bullets(runBullets(plan, runs));
    r.heading(3, "Test error (Fig. 7, right)");
    r.table(
      ["Loss", "Ours: test error %", "Ours: train error %", "Paper CIFAR-10 w/ aug", "Paper w/o aug"],
      testErrorRows(runs),
    );
    r.checks(errChecks);
    r.heading(3, "Geometry (Fig. 7, left three panels)");
    r.paragraph(
      `On the training images under the training transform. γ(x, y) = 1 − arccos(cos∠(x, y))/π; at the regular ` +
        `simplex with K = ${K}: ${fmtNum(gs, 4)}. The paper shows histograms only.`,
    );
    r.checks(geoChecks);
    for (const l of LOSSES) {
      const g = geo(l);
      if (g) r.figure(reportDir, g.paths.geometryPng, `Fig. 7 statistics, ${LOSS_LABEL[l]}`);
    }
    r.heading(3, "Theory vs. practice (Section 5.2)");
    r.checks(boundChecks);
    if (gsc?.paths.scBatchesPng) r.figure(reportDir, gsc.paths.scBatchesPng, "SC batch losses vs Theorem 2");
    r.heading(3, "Loss curves");
    for (const x of runs) {
      const what = `${LOSS_LABEL[x.loss]}${x.augment ? "" : " (no augmentation)"} loss curve`;
      r.figure(reportDir, x.result?.paths.figurePng, what);
    }
  };
  return {
    checks: [...errChecks, ...geoChecks, ...boundChecks],
    summary: section5Summary(plan, runs),
    render,
  };
}
