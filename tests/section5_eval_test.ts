/**
 * Section 5 evaluation: the Fig. 7 geometry statistics (exact simplex, collapsed non-simplex and
 * random feature sets against the float64 theory references), the SC batch-loss estimate on the
 * GPU (equal to the simplex value per batch at a simplex, its mean approaching Theorem 2's i.i.d.
 * expectation, equal to the float64 loss at a random configuration), Theorem 1's equality case, the
 * time-to-fit logic on scripted accuracy sequences, the random-label sweep's resumable bookkeeping
 * (scripted trainer, then one real tiny run), and `deno task geometry` end to end on checkpoints
 * written by `trainRun` (ResNet-18 at width 1/16 on 16×16 synthetic images).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { assertClose, gpuTest, randomArray, setup } from "./util.ts";
import { Rng } from "../data/sampler.ts";
import {
  ceBoundTheorem1,
  classMeans,
  gammaSimplex,
  gammaToClassMeans,
  pairwiseGamma,
  regularSimplex,
  scBoundIidExpectation,
  scLossAtSimplex,
  scLossBatchF64,
} from "../theory/mod.ts";
import {
  geometryCsvRows,
  geometryFigure,
  geometryStats,
  linearTrainError,
  projectRows,
  quantileSorted,
  summarizeGeometry,
  summaryStats,
} from "../experiments/section5/geometry_stats.ts";
import {
  ceBoundCheck,
  featureSource,
  scBatchLosses,
  scBoundCheck,
} from "../experiments/section5/bounds_check.ts";
import { FitTracker, timeToFit, timeToFitFigure } from "../experiments/section5/time_to_fit.ts";
import {
  defaultRandomLabelsConfig,
  type FitRecord,
  run as runRandomLabels,
  runFolder,
  type TrainFn,
} from "../experiments/random_labels.ts";
import { defaultGeometryConfig, run as runGeometry } from "../experiments/geometry.ts";
import { defaultTrainConfig, type TrainConfig } from "../experiments/section5/config.ts";
import { type TrainResult, trainRun } from "../experiments/section5/trainer.ts";
import { readCsv } from "../train/csv.ts";

/** Labels 0..K−1 with `perClass[y]` rows of class y, in a shuffled order. */
function labelsWithCounts(perClass: number[], seed: number): Int32Array {
  const out: number[] = [];
  perClass.forEach((c, y) => {
    for (let i = 0; i < c; i++) out.push(y);
  });
  const l = Int32Array.from(out);
  new Rng(seed).shuffle(l);
  return l;
}

/** Rows s_n·v_{y_n} (s_n uniform in [0.5, 2]) of class vertices `v`. */
function collapsedRows(v: number[][], labels: Int32Array, seed: number): Float64Array {
  const h = v[0].length;
  const r = new Rng(seed);
  const out = new Float64Array(labels.length * h);
  labels.forEach((y, n) => {
    const s = r.uniform(0.5, 2);
    for (let d = 0; d < h; d++) out[n * h + d] = s * v[y][d];
  });
  return out;
}

Deno.test("geometry: summaryStats and quantiles (numpy's linear method)", () => {
  const s = summaryStats([4, 1, 3, 2, NaN, 5]);
  assert.equal(s.n, 5);
  assert.equal(s.mean, 3);
  assert.equal(s.median, 3);
  assert.equal(s.q1, 2);
  assert.equal(s.q3, 4);
  assert.equal(s.min, 1);
  assert.equal(s.max, 5);
  assertClose([s.std], [Math.sqrt(2)], { rtol: 1e-15, atol: 0, label: "std" });
  assert.equal(quantileSorted([0, 10], 0.25), 2.5);
  assert.ok(Number.isNaN(summaryStats([]).mean));
});

Deno.test("geometry: an exact simplex gives γ_simplex(K) across means and weights, 1 to class means", () => {
  const K = 5, h = 7;
  const v = regularSimplex(K, h, 3);
  const labels = labelsWithCounts([3, 5, 4, 6, 2], 1);
  const features = collapsedRows(v, labels, 2);
  const weights = Float64Array.from(regularSimplex(K, h, 0.7).flat());
  const g = geometryStats({ features, dim: h, labels, numClasses: K, weights });
  assert.equal(g.meansPairs.length, (K * (K - 1)) / 2);
  assert.equal(g.weightPairs.length, (K * (K - 1)) / 2);
  const target = gammaSimplex(K);
  assertClose(g.meansPairs.map((p) => p.gamma), new Array(g.meansPairs.length).fill(target), {
    rtol: 0,
    atol: 1e-6,
    label: "γ across means",
  });
  assertClose(g.weightPairs.map((p) => p.gamma), new Array(g.weightPairs.length).fill(target), {
    rtol: 0,
    atol: 1e-6,
    label: "γ across weights",
  });
  assertClose(g.toMean, new Array(labels.length).fill(1), { rtol: 0, atol: 1e-6, label: "γ to class means" });
  const s = summarizeGeometry(g);
  assert.ok(Math.abs(s.acrossMeans.gapToSimplex) < 1e-6);
  assert.ok(Math.abs(s.toClassMeans.gapToCollapse) < 1e-6);
  assert.deepEqual(Array.from(g.classCounts), [3, 5, 4, 6, 2]);
  // CSV: one row per pair and per sample.
  const rows = geometryCsvRows(g, labels);
  assert.equal(rows.length, 10 + 10 + labels.length);
  // The figure spec has three panels with a red rule at the simplex value.
  const spec = geometryFigure(g, { title: "t" }) as { hconcat: unknown[] };
  assert.equal(spec.hconcat.length, 3);
  assert.ok(JSON.stringify(spec).includes(`"value":${target}`));
});

Deno.test("geometry: collapsed but not a simplex: γ to means is 1, γ across means is that of the vertices", () => {
  const K = 4, h = 6;
  const r = randomArray(K * h, 11, -1, 1);
  const v = Array.from({ length: K }, (_, k) => Array.from(r.subarray(k * h, (k + 1) * h)));
  const labels = labelsWithCounts([4, 4, 4, 4], 3);
  const features = collapsedRows(v, labels, 4);
  const g = geometryStats({ features, dim: h, labels, numClasses: K });
  assertClose(g.toMean, new Array(labels.length).fill(1), { rtol: 0, atol: 1e-6, label: "collapse" });
  const expected = pairwiseGamma(v);
  assertClose(g.meansPairs.map((p) => p.gamma), expected, { rtol: 1e-12, atol: 1e-12, label: "means" });
  const gap = summarizeGeometry(g).acrossMeans.gapToSimplex;
  assert.ok(Math.abs(gap) > 0.01, `random vertices should not look like a simplex (gap ${gap})`);
  assert.equal(g.weightPairs.length, 0);
  assert.equal((geometryFigure(g, { title: "t" }) as { hconcat: unknown[] }).hconcat.length, 2);
});

Deno.test("geometry: random features match the float64 theory references", () => {
  const K = 3, h = 5;
  const labels = labelsWithCounts([7, 3, 5], 5);
  const features = Float32Array.from(randomArray(labels.length * h, 6, -1, 2));
  const g = geometryStats({ features, dim: h, labels, numClasses: K });
  const mu = classMeans({ data: features, dim: h }, labels, K);
  g.means.forEach((m, k) => assertClose(m!, mu[k], { rtol: 1e-12, atol: 1e-14, label: `mean ${k}` }));
  assertClose(g.meansPairs.map((p) => p.gamma), pairwiseGamma(mu), {
    rtol: 1e-12,
    atol: 1e-14,
    label: "pairs",
  });
  assertClose(g.toMean, gammaToClassMeans({ data: features, dim: h }, labels, mu), {
    rtol: 1e-12,
    atol: 1e-14,
    label: "to means",
  });
  for (const x of g.toMean) assert.ok(x >= 0 && x <= 1);
  // Projection to the sphere keeps directions, so γ is unchanged; norms become ρ.
  const z = projectRows(features, h, Math.sqrt(10));
  const gz = geometryStats({ features: z, dim: h, labels, numClasses: K });
  for (let n = 0; n < labels.length; n++) {
    assertClose([gz.norms[n]], [Math.sqrt(10)], { rtol: 1e-12, label: "ρ" });
  }
  // A class without rows has no mean and drops out of the pairs.
  const g4 = geometryStats({ features, dim: h, labels, numClasses: 4 });
  assert.equal(g4.means[3], null);
  assert.equal(g4.meansPairs.length, 3);
  assert.throws(
    () => geometryStats({ features, dim: h, labels: labels.subarray(1), numClasses: K }),
    /labels/,
  );
});

Deno.test("geometry: linear training error", () => {
  // Two classes in 2-D, weights e1 and e2: row 2 is on the wrong side.
  const f = [2, 1, 0, 3, 5, 1];
  assertClose([linearTrainError(f, 2, [1, 0, 0, 1], [0, 1, 1])], [1 / 3], { rtol: 1e-15, label: "error" });
});

Deno.test("bounds: Theorem 1 holds with equality at the simplex configuration (C1–C3)", () => {
  const K = 4, h = 6, rhoZ = 2.5, rhoW = 1.3;
  const labels = labelsWithCounts([5, 5, 5, 5], 9);
  const zeta = regularSimplex(K, h, rhoZ);
  const features = new Float64Array(labels.length * h);
  labels.forEach((y, n) => features.set(zeta[y], n * h));
  const weights = Float64Array.from(regularSimplex(K, h, rhoW).flat());
  const r = ceBoundCheck(features, h, weights, labels);
  assertClose([r.rhoZ], [rhoZ], { rtol: 1e-12, label: "ρ_Z" });
  assertClose([r.frobW], [rhoW * Math.sqrt(K)], { rtol: 1e-12, label: "‖W‖_F" });
  assertClose([r.empirical], [r.bound], { rtol: 1e-9, atol: 0, label: "equality" });
  assertClose([r.bound], [ceBoundTheorem1(K, rhoZ, rhoW * Math.sqrt(K))], { rtol: 1e-15, label: "bound" });
  // Any other configuration (same norms bound) has a larger loss.
  const noisy = features.map((x, i) => x + 0.3 * Math.sin(7 * i));
  const r2 = ceBoundCheck(noisy, h, weights, labels);
  assert.ok(r2.empirical > r2.bound, `${r2.empirical} > ${r2.bound}`);
});

Deno.test({
  name:
    "bounds: SC batch losses on the GPU equal the simplex value per batch; the mean approaches Theorem 2 (i.i.d.)",
  ...gpuTest,
  fn: async () => {
    await setup();
    const K = 10, h = 12, perClass = 30, b = 100, batches = 120, rho2 = 10;
    const labels = labelsWithCounts(new Array(K).fill(perClass), 21);
    // Unnormalised collapsed rows: the GPU normalisation must map them onto ρ·ζ_y.
    const features = Float32Array.from(collapsedRows(regularSimplex(K, h, 1), labels, 22));
    const src = featureSource(features, h, labels, Math.sqrt(rho2));
    try {
      const r = await scBatchLosses(src, { batches, batchSize: b, labels, numClasses: K, rho2, seed: 5 });
      assert.equal(r.losses.length, batches);
      // Per batch: ℓ_SC (sum over anchors, float32 on the GPU) = the simplex value of its class counts.
      const expected = Array.from({ length: batches }, (_, t) => {
        const counts = new Array(K).fill(0);
        for (const i of r.indices.subarray(t * b, (t + 1) * b)) counts[labels[i]]++;
        return scLossAtSimplex(counts, rho2, K);
      });
      assertClose(r.simplexLosses, expected, { rtol: 1e-12, label: "host simplex values" });
      assertClose(r.losses, expected, { rtol: 1e-4, atol: 1e-3, label: "GPU batch losses at the simplex" });
      // The mean over i.i.d. batches estimates scBoundIidExpectation (4 standard errors).
      const check = scBoundCheck(r, { N: labels.length, K, b, rho2 });
      const iid = scBoundIidExpectation({ N: labels.length, K, b, rho2 });
      assert.equal(check.boundIidExpectation, iid);
      assert.ok(
        Math.abs(check.empirical - iid) < 4 * check.empiricalStdErr,
        `mean ${check.empirical} vs ${iid} (se ${check.empiricalStdErr})`,
      );
      assert.ok(
        Math.abs(check.gapSameBatches.mean) < 1e-3 * iid,
        "zero gap to the same batches' simplex value",
      );
      // A long host Monte Carlo of the same estimator: 20000 i.i.d. batches.
      const rng = new Rng(77);
      let s = 0, ss = 0;
      const M = 20000;
      for (let t = 0; t < M; t++) {
        const counts = new Array(K).fill(0);
        for (let i = 0; i < b; i++) counts[labels[rng.randInt(labels.length)]]++;
        const v = scLossAtSimplex(counts, rho2, K);
        s += v;
        ss += v * v;
      }
      const mean = s / M, se = Math.sqrt((ss / M - mean * mean) / M);
      assert.ok(Math.abs(mean - iid) < 4 * se, `Monte Carlo ${mean} vs ${iid} (se ${se})`);
    } finally {
      src.z.dispose();
      src.labels.dispose();
    }
  },
});

Deno.test({
  name: "bounds: SC batch losses on the GPU match the float64 loss at a random configuration",
  ...gpuTest,
  fn: async () => {
    await setup();
    const K = 3, h = 9, b = 37, rho2 = 10;
    const labels = labelsWithCounts([13, 9, 11], 31);
    const features = Float32Array.from(randomArray(labels.length * h, 32, -1, 1));
    const src = featureSource(features, h, labels, Math.sqrt(rho2));
    try {
      const r = await scBatchLosses(src, { batches: 6, batchSize: b, labels, numClasses: K, rho2, seed: 8 });
      const Z = projectRows(features, h, Math.sqrt(rho2));
      const expected = Array.from(
        { length: 6 },
        (_, t) => scLossBatchF64({ data: Z, dim: h }, labels, r.indices.subarray(t * b, (t + 1) * b)),
      );
      assertClose(r.losses, expected, { rtol: 1e-4, atol: 1e-3, label: "GPU vs float64" });
      // Unbalanced sizes: the bound uses K·⌊N/K⌋ and says so.
      const c = scBoundCheck(r, { N: labels.length, K: 2, b, rho2, balanced: false });
      assert.equal(c.N, 32);
      assert.equal(c.notes.length, 2);
    } finally {
      src.z.dispose();
      src.labels.dispose();
    }
  },
});

Deno.test("time to fit: the first evaluation at 100% within the cap", () => {
  const seq = [
    { step: 1500, trainError: 0 },
    { step: 500, trainError: 0.4 },
    { step: 1000, trainError: 0.01 },
    { step: 2000, trainError: 0 },
  ];
  const t = timeToFit(seq, 100000);
  assert.equal(t.fitted, true);
  assert.equal(t.iterations, 1500);
  assert.equal(t.evaluations, 4);
  assert.equal(t.lastStep, 2000);
  assert.equal(t.bestError, 0);
  // Past the cap nothing counts: "not fitted".
  const capped = timeToFit(seq, 1000);
  assert.equal(capped.fitted, false);
  assert.equal(capped.iterations, null);
  assert.equal(capped.evaluations, 2);
  assert.equal(capped.lastError, 0.01);
  // Never at 100% (tiny errors and NaN are not fits).
  const never = timeToFit([{ step: 500, trainError: 1e-9 }, { step: 1000, trainError: NaN }], 1000);
  assert.equal(never.fitted, false);
  assert.equal(never.bestError, 1e-9);
  assert.equal(timeToFit([], 10).fitted, false);
  assert.throws(() => timeToFit(seq, 0), /cap/);
  // The tracker continues a resumed run's evaluations and reports the fit as soon as it happens.
  const tr = new FitTracker(3000, [{ step: 500, trainError: 0.2 }]);
  assert.equal(tr.add(1000, 0.05), false);
  assert.equal(tr.add(1500, 0), true);
  assert.equal(tr.result().iterations, 1500);
  assert.equal(tr.evaluations.length, 3);
  const spec = JSON.stringify(timeToFitFigure([{ loss: "sc", p: 0.8, fit: never }], 1000, "t"));
  assert.ok(spec.includes('"not fitted"') && spec.includes('"square"'));
});

/** A scripted trainer: training error max(0, p − speed·step/2000) at every evaluation. */
function scriptedTrainer(calls: string[]): TrainFn {
  const speed: Record<string, number> = { ce: 1, "ce-fix": 0.8, sc: 0.25 };
  return (config: TrainConfig, hooks) => {
    calls.push(`${config.loss}:${config.corruption}`);
    assert.equal(config.augment, false);
    assert.equal(config.evalEvery, 100);
    let step = 0;
    let status: TrainResult["status"] = "completed";
    while (step < config.iterations) {
      step = Math.min(config.iterations, step + config.evalEvery);
      const trainError = Math.max(0, config.corruption - (speed[config.loss] * step) / 2000);
      hooks.onEval?.({ step, trainError, trainErrorClean: trainError, testError: 0.5 });
      if (step < config.iterations && hooks.shouldStop?.(step + 1)) {
        status = "interrupted";
        break;
      }
    }
    return Promise.resolve(
      { status, step, iterations: config.iterations, metrics: null } as unknown as TrainResult,
    );
  };
}

Deno.test({
  name: "random labels: sweep bookkeeping, stop at the fit, not fitted at the cap, finished runs skipped",
  ...gpuTest,
  fn: async () => {
    const out = await Deno.makeTempDir({ prefix: "random_labels_test_" });
    try {
      const cfg = {
        ...defaultRandomLabelsConfig,
        ps: [0.5, 0],
        losses: ["ce", "sc"] as ("ce" | "sc")[],
        iterations: 1000,
        evalEvery: 100,
        out,
        quiet: true,
      };
      const calls: string[] = [];
      const s = await runRandomLabels(cfg, scriptedTrainer(calls));
      assert.deepEqual(calls, ["ce:0", "ce:0.5", "sc:0", "sc:0.5"]);
      const byKey = new Map(s.runs.map((r) => [`${r.loss}:${r.p}`, r]));
      assert.equal(byKey.get("ce:0")!.fit.iterations, 100);
      assert.equal(byKey.get("ce:0.5")!.fit.iterations, 1000); // 0.5 − 1000/2000 = 0 exactly at the cap
      assert.equal(byKey.get("sc:0")!.fit.iterations, 100);
      assert.equal(byKey.get("sc:0.5")!.fit.fitted, false); // would need 4000 iterations
      assert.equal(byKey.get("sc:0.5")!.fit.evaluations, 10);
      assert.equal(byKey.get("ce:0")!.ended, "fitted");
      const fit = JSON.parse(
        await Deno.readTextFile(join(out, runFolder("sc", 0.5), "fit.json")),
      ) as FitRecord;
      assert.equal(fit.ended, "budget");
      const csv = await readCsv(join(out, "time_to_fit.csv"), { numbers: true });
      assert.equal(csv.length, 4);
      assert.deepEqual(csv.map((r) => r.time_to_fit), [100, 1000, 100, ""]);
      assert.ok((await Deno.stat(join(out, "time_to_fit.svg"))).size > 0);
      assert.ok((await Deno.stat(join(out, "time_to_fit.png"))).size > 0);
      // Re-run: everything finished, nothing trains; a smaller cap turns the p = 0.5 CE fit into "not fitted".
      const again = await runRandomLabels({ ...cfg, iterations: 900 }, scriptedTrainer(calls));
      assert.equal(calls.length, 4);
      assert.ok(again.runs.every((r) => r.skipped));
      assert.equal(again.runs.find((r) => r.loss === "ce" && r.p === 0.5)!.fit.fitted, false);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

/** A tiny Section 5 run: ResNet-18 at width 1/16 on 16×16 synthetic images, K = 3. */
function tinyTrainConfig(out: string, over: Partial<TrainConfig>): TrainConfig {
  return {
    ...defaultTrainConfig,
    width: 1 / 16,
    syntheticN: 60,
    syntheticTestN: 12,
    syntheticClasses: 3,
    syntheticSize: 16,
    trainSubset: 48, // balanced: 16 per class
    iterations: 12,
    batch: 24,
    evalBatch: 32,
    probeIterations: 10,
    logEvery: 6,
    checkpointEvery: 0,
    out,
    quiet: true,
    ...over,
  };
}

Deno.test({
  name: "random labels: one real tiny run through trainRun (hooks, fit.json, skipped on re-run)",
  ...gpuTest,
  fn: async () => {
    await setup();
    const out = await Deno.makeTempDir({ prefix: "random_labels_real_" });
    try {
      const t = tinyTrainConfig(out, {});
      const cfg = {
        ...defaultRandomLabelsConfig,
        ps: [0.5],
        losses: ["ce"] as "ce"[],
        iterations: 12,
        evalEvery: 6,
        probeIterations: 5,
        width: t.width,
        syntheticN: t.syntheticN,
        syntheticTestN: t.syntheticTestN,
        syntheticClasses: t.syntheticClasses,
        syntheticSize: t.syntheticSize,
        trainSubset: t.trainSubset,
        batch: t.batch,
        evalBatch: t.evalBatch,
        checkpointEvery: 0,
        testSubset: 0,
        out,
        quiet: true,
      };
      let calls = 0;
      const counting: TrainFn = (c, h) => {
        calls++;
        return trainRun(c, h);
      };
      const s = await runRandomLabels(cfg, counting);
      assert.equal(calls, 1);
      const r = s.runs[0];
      assert.ok(r.evaluations.length >= 1 && r.evaluations.length <= 2);
      assert.equal(r.evaluations[0].step, 6);
      for (const e of r.evaluations) assert.ok(e.trainError >= 0 && e.trainError <= 1);
      assert.equal(r.fit.fitted, r.evaluations.some((e) => e.trainError === 0));
      const corruption = JSON.parse(
        await Deno.readTextFile(join(out, runFolder("ce", 0.5), "corruption.json")),
      );
      assert.equal(corruption.count, 24); // ⌊0.5·48⌋
      await runRandomLabels(cfg, counting);
      assert.equal(calls, 1);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "geometry end to end: checkpoints of trainRun (SC with augmentation, SC without, CE)",
  ...gpuTest,
  fn: async () => {
    await setup();
    const root = await Deno.makeTempDir({ prefix: "geometry_test_" });
    try {
      // SC with augmentation: batches are fresh forward passes of augmented images.
      const scDir = join(root, "sc");
      await trainRun(tinyTrainConfig(scDir, { loss: "sc", augment: true }));
      const rep = await runGeometry({
        ...defaultGeometryConfig,
        checkpoint: scDir,
        out: join(root, "geom-sc"),
        scBatches: 20,
        quiet: true,
      });
      assert.equal(rep.loss, "sc");
      assert.equal(rep.augment, true);
      assert.equal(rep.n, 48);
      assert.equal(rep.numClasses, 3);
      assert.equal(rep.balanced, true);
      assert.equal(rep.weightsSource, "probe");
      assert.ok(rep.sc && !rep.ce);
      assert.equal(rep.sc.batches, 20);
      assert.equal(rep.sc.b, 24);
      assert.equal(rep.sc.notes.length, 0);
      assertClose([rep.geometry.simplexGamma], [gammaSimplex(3)], { rtol: 1e-15, label: "γ simplex" });
      assertClose([rep.geometry.norms.min, rep.geometry.norms.max], [Math.sqrt(10), Math.sqrt(10)], {
        rtol: 1e-5,
        label: "SC representations on the sphere of radius 1/√τ",
      });
      for (const s of [rep.geometry.acrossMeans, rep.geometry.toClassMeans, rep.geometry.acrossWeights!]) {
        assert.ok(s.min >= 0 && s.max <= 1 && Number.isFinite(s.mean));
      }
      assert.equal(rep.geometry.acrossMeans.n, 3);
      assert.equal(rep.geometry.toClassMeans.n, 48);
      assert.ok(Number.isFinite(rep.sc.empirical) && rep.sc.empirical > 0);
      assert.equal(rep.sc.boundIidExpectation, scBoundIidExpectation({ N: 48, K: 3, b: 24, rho2: 10 }));
      const geo = await readCsv(rep.paths.geometryCsv, { numbers: true });
      assert.equal(geo.length, 3 + 3 + 48);
      assert.equal((await readCsv(rep.paths.scBatchesCsv, { numbers: true })).length, 20);
      for (const p of ["geometrySvg", "geometryPng", "scBatchesSvg", "scBatchesPng", "summary"]) {
        assert.ok((await Deno.stat(rep.paths[p])).size > 0, p);
      }

      // SC without augmentation: batches from the extracted features and from fresh forward passes
      // of the same images agree (eval-mode BatchNorm), so both sources are the same estimator.
      const sc2 = join(root, "sc-noaug");
      await trainRun(tinyTrainConfig(sc2, { loss: "sc", augment: false, iterations: 6 }));
      const common = { ...defaultGeometryConfig, checkpoint: sc2, scBatches: 4, quiet: true };
      const a = await runGeometry({ ...common, out: join(root, "geom-a"), scSource: "features" });
      const b = await runGeometry({ ...common, out: join(root, "geom-b"), scSource: "images" });
      assert.equal(a.augment, false);
      const la = (await readCsv(a.paths.scBatchesCsv, { numbers: true })).map((r) => r.loss as number);
      const lb = (await readCsv(b.paths.scBatchesCsv, { numbers: true })).map((r) => r.loss as number);
      assertClose(lb, la, { rtol: 1e-4, atol: 1e-4, label: "images vs features" });

      // CE: Theorem 1 with the measured ρ_Z and ‖W‖_F (balanced labels: the bound must hold).
      const ceDir = join(root, "ce");
      await trainRun(tinyTrainConfig(ceDir, { loss: "ce", augment: false }));
      const ce = await runGeometry({
        ...defaultGeometryConfig,
        checkpoint: ceDir,
        out: join(root, "geom-ce"),
        quiet: true,
      });
      assert.ok(ce.ce && !ce.sc);
      assert.equal(ce.weightsSource, "classifier");
      assert.ok(ce.ce.empirical >= ce.ce.bound, `${ce.ce.empirical} ≥ ${ce.ce.bound}`);
      assert.ok(ce.ce.rhoZ > 0 && ce.ce.frobW > 0);
      assert.equal(ce.geometry.acrossWeights!.n, 3);
      assert.ok(ce.trainError !== null && ce.trainError >= 0 && ce.trainError <= 1);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
