/**
 * The all-multiset SC loss kernels (engine/ops/sc_multiset.ts) against float64 references, and the
 * Fig. 5 / Fig. 6 toy simulations (experiments/fig5.ts, experiments/fig6.ts) end to end.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { assertClose, gpuTest, numericGrad, randomArray, setup } from "./util.ts";
import { ShapeError, tensor } from "../engine/tensor.ts";
import {
  MultisetTable,
  scLossAllMultisets,
  scMultisetBatchLosses,
  ScMultisetTrainer,
  scSphereDescent,
} from "../engine/ops/sc_multiset.ts";
import {
  forEachMultiset,
  regularSimplex,
  scBound,
  scLossAllMultisetsF64,
  scLossAtSimplex,
  scLossBatchF64,
  scLossOccurrencesF64,
} from "../theory/mod.ts";
import { run as runFig6 } from "../experiments/fig6.ts";
import { run as runFig5 } from "../experiments/fig5.ts";

const rowsOf = (x: ArrayLike<number>, h: number) => ({ data: x, dim: h });

/** Float64 mean over all multisets of the gradient w.r.t. the points (occurrence gradients summed). */
function meanGradF64(x: Float64Array, h: number, labels: number[], b: number): Float64Array {
  const N = labels.length;
  const g = new Float64Array(N * h);
  let count = 0;
  forEachMultiset(N, b, (idx) => {
    const U = Array.from(idx, (i) => x.subarray(i * h, i * h + h));
    const r = scLossOccurrencesF64(U, Array.from(idx, (i) => labels[i]), { grad: true });
    idx.forEach((i, p) => {
      for (let d = 0; d < h; d++) g[i * h + d] += r.grad![p][d];
    });
    count++;
  });
  return g.map((v) => v / count);
}

Deno.test({
  name: "MultisetTable.all enumerates C(N+b−1, b) count vectors in forEachMultiset order",
  ...gpuTest,
  fn() {
    const t = MultisetTable.all(5, 3);
    assert.deepStrictEqual(t.count, 35);
    let k = 0;
    forEachMultiset(5, 3, (idx) => {
      assert.deepStrictEqual(Array.from(t.indices(k++)), Array.from(idx));
    });
    assert.deepStrictEqual(MultisetTable.all(12, 9).count, 167960);
    const f = MultisetTable.fromCounts([[2, 0, 1], [0, 3, 0]], 3);
    assert.deepStrictEqual(Array.from(f.counts(0)), [2, 0, 1]);
    assert.deepStrictEqual(Array.from(f.indices(1)), [1, 1, 1]);
    assert.throws(() => MultisetTable.fromCounts([[1, 1], [3, 0]], 2), RangeError);
  },
});

Deno.test({
  name: "scLossAllMultisets: small problems vs brute force, gradient vs float64 finite differences",
  ...gpuTest,
  async fn() {
    await setup();
    // (N, K, b, h): N not a multiple of the chunk size; an unbalanced case; h = 3.
    for (const [N, K, b, h, seed] of [[6, 3, 4, 2, 1], [7, 3, 5, 3, 2], [5, 2, 3, 2, 3]]) {
      const labels = Array.from({ length: N }, (_, i) => i % K);
      const x = randomArray(N * h, seed, -1.2, 1.2);
      const table = MultisetTable.all(N, b);
      const z = tensor(x, [N, h], { requiresGrad: true });
      const y = tensor(labels, [N], { dtype: "i32" });
      const { loss, perBatch } = scLossAllMultisets(z, y, table, { perBatch: true });
      assert.deepStrictEqual(loss.shape, []);
      const ref = scLossAllMultisetsF64(rowsOf(x, h), labels, b);
      assert.deepStrictEqual(ref.count, table.count);
      assertClose([await loss.item()], [ref.mean], { rtol: 2e-6, atol: 0, label: `mean N=${N}` });
      const pb = await perBatch!.toArray();
      const pbRef = Array.from(
        { length: table.count },
        (_, t) => scLossBatchF64(rowsOf(x, h), labels, table.indices(t)),
      );
      assertClose(pb, pbRef, { rtol: 2e-6, atol: 2e-6, label: `per batch N=${N}` });
      loss.backward();
      const fd = numericGrad((v) => scLossAllMultisetsF64(rowsOf(v, h), labels, b).mean, x);
      assertClose(await z.grad!.toArray(), fd, { rtol: 1e-4, atol: 2e-6, label: `grad N=${N}` });
      z.dispose();
      y.dispose();
      perBatch!.dispose();
      table.dispose();
    }
  },
});

Deno.test({
  name: "scLossAllMultisets: N=12, K=3, b=9 (167,960 multisets) vs float64 loss, batch losses and gradient",
  ...gpuTest,
  async fn() {
    await setup();
    const N = 12, b = 9, h = 2;
    const labels = Array.from({ length: N }, (_, i) => Math.floor(i / 4));
    const x = randomArray(N * h, 11, -1, 1);
    const table = MultisetTable.all(N, b);
    const z = tensor(x, [N, h], { requiresGrad: true });
    const y = tensor(labels, [N], { dtype: "i32" });
    const { loss } = scLossAllMultisets(z, y, table);
    const ref = scLossAllMultisetsF64(rowsOf(x, h), labels, b);
    assertClose([await loss.item()], [ref.mean], { rtol: 2e-6, atol: 0, label: "mean" });
    const pbT = scMultisetBatchLosses(z, y, table);
    const pb = await pbT.toArray();
    const pbRef = new Float64Array(table.count);
    let t = 0;
    forEachMultiset(N, b, (idx) => (pbRef[t++] = scLossBatchF64(rowsOf(x, h), labels, idx)));
    assertClose(pb, pbRef, { rtol: 2e-6, atol: 2e-6, label: "batch losses" });
    loss.backward();
    assertClose(await z.grad!.toArray(), meanGradF64(x, h, labels, b), {
      rtol: 1e-4,
      atol: 2e-6,
      label: "grad",
    });
    z.dispose();
    y.dispose();
    pbT.dispose();
    table.dispose();
  },
});

Deno.test({
  name: "at the regular simplex the mean over all 167,960 multisets equals the Theorem 2 bound 12.12015",
  ...gpuTest,
  async fn() {
    await setup();
    const N = 12, b = 9;
    const S = regularSimplex(3, 2, 1);
    const labels = Array.from({ length: N }, (_, i) => Math.floor(i / 4));
    const z = tensor(labels.flatMap((c) => S[c]), [N, 2]);
    const y = tensor(labels, [N], { dtype: "i32" });
    const table = MultisetTable.all(N, b);
    const bound = scBound({ N, K: 3, b, rho2: 1 }).mean;
    assert(Math.abs(bound - 12.12015) < 5e-6, `bound ${bound}`);
    const { loss, perBatch } = scLossAllMultisets(z, y, table, { perBatch: true });
    const gpuMean = await loss.item();
    const pb = await perBatch!.toArray();
    let s = 0;
    for (const v of pb) s += v;
    assertClose([gpuMean, s / pb.length], [bound, bound], { rtol: 1e-6, atol: 0, label: "simplex mean" });
    // Every batch loss at the simplex depends on its class multiplicities only.
    const c = table.counts(12345);
    const cls = [0, 0, 0];
    c.forEach((m, k) => (cls[labels[k]] += m));
    assertClose([pb[12345]], [scLossAtSimplex(cls, 1, 3)], {
      rtol: 2e-6,
      atol: 0,
      label: "batch at simplex",
    });
    table.dispose();
  },
});

Deno.test({
  name: "ScMultisetTrainer and scSphereDescent: one step matches the float64 projected step",
  ...gpuTest,
  async fn() {
    await setup();
    const N = 6, b = 4, h = 2, lr = 0.3;
    const labels = [0, 1, 2, 0, 1, 2];
    const raw = randomArray(N * h, 21, -1, 1);
    const x = Float64Array.from(raw);
    for (let i = 0; i < N; i++) {
      const n = Math.hypot(x[2 * i], x[2 * i + 1]);
      x[2 * i] = Math.fround(x[2 * i] / n);
      x[2 * i + 1] = Math.fround(x[2 * i + 1] / n);
    }
    // Float64 projected step: z ← normalise(z − lr·(g − ⟨g, z⟩z)).
    const step = (g: Float64Array) => {
      const out = new Float64Array(N * h);
      for (let i = 0; i < N; i++) {
        const zi = [x[2 * i], x[2 * i + 1]];
        const nz = Math.hypot(zi[0], zi[1]);
        const gr = (g[2 * i] * zi[0] + g[2 * i + 1] * zi[1]) / nz;
        const v = [zi[0] - lr * (g[2 * i] - gr * zi[0] / nz), zi[1] - lr * (g[2 * i + 1] - gr * zi[1] / nz)];
        const n = Math.hypot(v[0], v[1]);
        out[2 * i] = v[0] / n;
        out[2 * i + 1] = v[1] / n;
      }
      return out;
    };
    // Full batch (mean over all multisets).
    const table = MultisetTable.all(N, b);
    const z = tensor(x, [N, h]);
    const y = tensor(labels, [N], { dtype: "i32" });
    const tr = new ScMultisetTrainer(z, y, table, { lr, steps: 1, momentum: 0 });
    tr.step();
    assertClose(await tr.lossLog(), [scLossAllMultisetsF64(rowsOf(x, h), labels, b).mean], {
      rtol: 2e-6,
      atol: 0,
      label: "trainer loss",
    });
    assertClose(await z.toArray(), step(meanGradF64(x, h, labels, b)), {
      rtol: 0,
      atol: 2e-5,
      label: "trainer step",
    });
    tr.dispose();
    // One batch with repeated indices (counts 2, 0, 1, 0, 0, 1), two problems with different labels.
    const counts = [2, 0, 1, 0, 0, 1];
    const one = MultisetTable.fromCounts([counts], N);
    const labels2 = [0, 0, 1, 1, 0, 1];
    const z3 = tensor([...x, ...x], [2, N, h]);
    const y3 = tensor([...labels, ...labels2], [2, N], { dtype: "i32" });
    const res = await scSphereDescent(z3, y3, one, { steps: 1, lr, momentum: 0 });
    const got = await res.z.toArray();
    const lastLoss = await res.lastLoss.toArray();
    const idx = one.indices(0);
    for (const [r, lab] of [labels, labels2].entries()) {
      const U = Array.from(idx, (i) => x.subarray(i * h, i * h + h));
      const ref = scLossOccurrencesF64(U, Array.from(idx, (i) => lab[i]), { grad: true });
      const g = new Float64Array(N * h);
      idx.forEach((i, p) => {
        for (let d = 0; d < h; d++) g[i * h + d] += ref.grad![p][d];
      });
      assertClose([lastLoss[r]], [ref.loss], { rtol: 2e-6, atol: 1e-6, label: `descent loss ${r}` });
      assertClose(got.subarray(r * N * h, (r + 1) * N * h), step(g), {
        rtol: 0,
        atol: 2e-5,
        label: `descent ${r}`,
      });
    }
    res.z.dispose();
    res.lastLoss.dispose();
    one.dispose();
    table.dispose();
  },
});

Deno.test({
  name: "scLossAllMultisets: shape errors name the op and the shapes",
  ...gpuTest,
  async fn() {
    await setup();
    const table = MultisetTable.all(4, 3);
    const z = tensor(new Float32Array(10), [5, 2]);
    const y = tensor([0, 0, 1, 1], [4], { dtype: "i32" });
    assert.throws(() => scLossAllMultisets(z, y, table), (e: Error) => {
      assert(e instanceof ShapeError);
      assert(e.message.includes("scLossAllMultisets") && e.message.includes("[5, 2]"), e.message);
      return true;
    });
    const z4 = tensor(new Float32Array(8), [4, 2]);
    const yf = tensor([0, 0, 1, 1], [4]);
    assert.throws(() => scLossAllMultisets(z4, yf, table), ShapeError);
    assert.throws(() => scMultisetBatchLosses(z, y, table), ShapeError);
    table.dispose();
  },
});

Deno.test({
  name: "fig6: full-batch projected GD reaches the Theorem 2 bound within 1e-5 relative; files written",
  ...gpuTest,
  async fn() {
    await setup();
    const out = await Deno.makeTempDir({ prefix: "fig6_test_" });
    const s = await runFig6({
      k: 3,
      nPerClass: 4,
      b: 9,
      h: 2,
      rho: 1,
      steps: 160,
      lr: 0,
      lrPower: -1,
      momentum: 0.9,
      stochastic: false,
      logEvery: 80,
      tolerance: 1e-5,
      bins: 60,
      out,
      seed: 0,
      json: false,
      quiet: true,
    });
    assertClose([s.theory], [12.12015], { rtol: 5e-7, atol: 0, label: "bound" });
    assert(s.pass, `relGap ${s.relGap}`);
    assert(s.relGap >= -1e-12 && s.relGap <= 1e-5, `relGap ${s.relGap}`);
    assert.deepStrictEqual(s.setting.batches, 167960);
    assert.deepStrictEqual(s.patterns.length, 12);
    assert.deepStrictEqual(s.patterns.reduce((a, p) => a + p.batches, 0), 167960);
    for (const p of s.patterns) {
      assertClose([p.meanLoss], [p.simplexLoss], { rtol: 1e-4, atol: 0, label: p.pattern });
    }
    for (
      const f of [
        "fig6.svg",
        "fig6.png",
        "fig6_curve.csv",
        "fig6_batches.csv",
        "fig6_patterns.csv",
        "summary.json",
      ]
    ) {
      assert((await Deno.stat(join(out, f))).size > 0, f);
    }
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test({
  name: "fig6 --stochastic runs one batch per step and evaluates the full mean",
  ...gpuTest,
  async fn() {
    await setup();
    const out = await Deno.makeTempDir({ prefix: "fig6s_test_" });
    const s = await runFig6({
      k: 3,
      nPerClass: 4,
      b: 9,
      h: 2,
      rho: 1,
      steps: 4000,
      lr: 0,
      lrPower: -1,
      momentum: 0.9,
      stochastic: true,
      logEvery: 100,
      tolerance: 1e-5,
      bins: 40,
      out,
      seed: 1,
      json: false,
      quiet: true,
    });
    assert.deepStrictEqual(s.setting.mode, "stochastic");
    assert(s.relGap >= -1e-12 && s.relGap < 1e-2, `relGap ${s.relGap}`);
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test({
  name: "fig5: per-batch minima are ≤ the simplex value, strictly below it for (7,2,0) and (5,2,2)",
  ...gpuTest,
  async fn() {
    await setup();
    const out = await Deno.makeTempDir({ prefix: "fig5_test_" });
    const s = await runFig5({
      configs: ["7-2-0", "5-2-2", "3-3-3"],
      rho: 1,
      restarts: 4,
      steps: 2000,
      lr: 0.02,
      lrPower: 2,
      momentum: 0.9,
      out,
      seed: 0,
      json: false,
      quiet: true,
    });
    assert(s.pass);
    const [a, b, c] = s.rows;
    // (7, 2, 0): two antipodal points, ℓ = 7·log(6 + 2e^{−2}) + 2·log(1 + 7e^{−2}).
    assertClose([a.minLoss], [7 * Math.log(6 + 2 * Math.exp(-2)) + 2 * Math.log(1 + 7 * Math.exp(-2))], {
      rtol: 1e-6,
      atol: 0,
      label: "(7,2,0)",
    });
    assertClose([a.simplexLoss], [scLossAtSimplex([7, 2, 0], 1, 3)], {
      rtol: 1e-12,
      atol: 0,
      label: "simplex",
    });
    assert(b.minLoss < b.simplexLoss - 1e-2, `(5,2,2) ${b.minLoss} vs ${b.simplexLoss}`);
    // (3, 3, 3): the simplex is the minimiser.
    assertClose([c.minLoss], [c.simplexLoss], { rtol: 1e-6, atol: 0, label: "(3,3,3)" });
    for (const f of ["fig5.svg", "fig5.png", "fig5.csv", "fig5_points.csv", "summary.json"]) {
      assert((await Deno.stat(join(out, f))).size > 0, f);
    }
    await Deno.remove(out, { recursive: true });
  },
});
