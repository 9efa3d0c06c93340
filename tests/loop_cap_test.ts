/**
 * Loop budgets: llvmpipe (the software adapter) silently stops a shader invocation's loops after 65,535
 * iterations in all (`MAX_LOOP_TRIPS` in shaders/common.ts). Every op whose per-invocation loops grow with
 * its input is checked here against float64 references at sizes past that budget, and the ops that cannot
 * take a size say so instead of returning a wrong result.
 */
import assert from "node:assert/strict";
import { assertClose, gpuTest, randomArray, randomInts, setup } from "./util.ts";
import { ShapeError, tensor } from "../engine/tensor.ts";
import { max, mean, sum } from "../engine/ops/reduce.ts";
import { batchNorm2d } from "../engine/ops/batchnorm.ts";
import { crossEntropy, normalizeToSphere, supConLoss } from "../engine/ops/loss.ts";
import { linear, matmul, setGemmTiling } from "../engine/ops/matmul.ts";
import { conv2d } from "../engine/ops/conv.ts";
import { argmax, gatherRows } from "../engine/ops/shape.ts";
import { MultisetTable, ScMultisetTrainer, scSphereDescent } from "../engine/ops/sc_multiset.ts";
import { gemmKernel, REGISTER_TILING, SHARED_TILING } from "../shaders/gemm.ts";
import { batchNormTrainBackwardRef, batchNormTrainRef } from "./reference/batchnorm_ref.ts";
import { matmulRef } from "./reference/matmul_ref.ts";
import { conv2dGradWeightRef, type ConvDims } from "./reference/conv_ref.ts";
import { scLossOccurrencesF64 } from "../theory/mod.ts";
import { literalLoopTrips, loopBudgetCheck } from "./wgsl_loops.ts";

Deno.test({
  name:
    "loop budget: sum, mean and max over 100,003 elements of one axis (contiguous and strided) vs float64",
  ...gpuTest,
  async fn() {
    await setup();
    // Contiguous: [3, 100003] over axis 1. f32 partial sums of runs of ≤ 65,535 values of [-1, 1):
    // |error| ≲ 1e-3 on sums of magnitude ~100 (atol 2e-3); mean 1e-7-scaled; max exact.
    const [rows, len] = [3, 100003];
    const xd = randomArray(rows * len, 1);
    const x = tensor(xd, [rows, len]);
    const sums = new Float64Array(rows);
    const maxes = new Float64Array(rows).fill(-Infinity);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < len; i++) {
        sums[r] += xd[r * len + i];
        maxes[r] = Math.max(maxes[r], xd[r * len + i]);
      }
    }
    assertClose(await sum(x, 1).toArray(), sums, { rtol: 1e-5, atol: 2e-3, label: "sum axis 1" });
    assertClose(await mean(x, 1).toArray(), sums.map((s) => s / len), {
      rtol: 1e-5,
      atol: 2e-8,
      label: "mean axis 1",
    });
    assertClose(await max(x, 1).toArray(), maxes, { rtol: 0, atol: 0, label: "max axis 1" });
    // Strided: [70001, 2] over axis 0 (each output walks a stride-2 column).
    const n0 = 70001;
    const yd = randomArray(n0 * 2, 2);
    const y = tensor(yd, [n0, 2]);
    const col = [0, 1].map((c) => {
      let s = 0;
      for (let i = 0; i < n0; i++) s += yd[i * 2 + c];
      return s;
    });
    assertClose(await sum(y, 0).toArray(), col, { rtol: 1e-5, atol: 2e-3, label: "sum axis 0" });
    for (const t of [x, y]) t.dispose();
  },
});

for (const [n, c, h, w] of [[2, 2, 256, 280], [256, 2, 32, 32]]) {
  Deno.test({
    name: `loop budget: batchNorm2d training forward and backward over N·H·W = ${
      n * h * w
    } (x [${n}, ${c}, ${h}, ${w}])`,
    ...gpuTest,
    async fn() {
      await setup();
      const s = h * w;
      const xd = randomArray(n * c * s, 3, -2, 3);
      const dyd = randomArray(n * c * s, 4);
      const gd = randomArray(c, 5, 0.5, 1.5);
      const bd = randomArray(c, 6, -0.5, 0.5);
      const rmd = randomArray(c, 7, -0.2, 0.2);
      const rvd = randomArray(c, 8, 0.5, 2);
      const x = tensor(xd, [n, c, h, w], { requiresGrad: true });
      const gamma = tensor(gd, [c], { requiresGrad: true });
      const beta = tensor(bd, [c], { requiresGrad: true });
      const rm = tensor(rmd, [c]);
      const rv = tensor(rvd, [c]);
      const y = batchNorm2d(x, { gamma, beta, runningMean: rm, runningVar: rv }, {
        training: true,
        momentum: 0.3,
      });
      const ref = batchNormTrainRef(xd, n, c, s, gd, bd, rmd, rvd, 0.3);
      // Normalised outputs are O(1); statistics are f32 sums of ≤ 1024-element chunks combined exactly.
      assertClose(await y.toArray(), ref.y, { rtol: 1e-4, atol: 1e-4, label: "y" });
      assertClose(await rm.toArray(), ref.runningMean, { rtol: 1e-5, atol: 1e-6, label: "runningMean" });
      assertClose(await rv.toArray(), ref.runningVar, { rtol: 1e-5, atol: 1e-6, label: "runningVar" });
      y.backward(tensor(dyd, y.shape));
      const bref = batchNormTrainBackwardRef(xd, dyd, n, c, s, gd);
      // dx: differences of O(1) terms (atol 1e-4); dγ, dβ: sums of ~1e5 O(1) terms, magnitude ~300.
      assertClose(await x.grad!.toArray(), bref.dx, { rtol: 1e-3, atol: 1e-4, label: "dx" });
      assertClose(await gamma.grad!.toArray(), bref.dgamma, { rtol: 1e-4, atol: 2e-2, label: "dgamma" });
      assertClose(await beta.grad!.toArray(), bref.dbeta, { rtol: 1e-4, atol: 2e-2, label: "dbeta" });
      for (const t of [x, gamma, beta, rm, rv, y]) t.dispose();
    },
  });
}

Deno.test({
  name: "loop budget: supConLoss at b = 4096 (d = 4), loss and gradient vs float64",
  ...gpuTest,
  async fn() {
    await setup();
    const [b, d] = [4096, 4];
    const raw = randomArray(b * d, 9);
    const zd = new Float64Array(b * d);
    for (let i = 0; i < b; i++) {
      const row = raw.subarray(i * d, i * d + d);
      const nrm = Math.hypot(...row);
      for (let t = 0; t < d; t++) zd[i * d + t] = Math.fround((2 * row[t]) / nrm); // radius 2
    }
    const labels = randomInts(b, 10, 10);
    const z = tensor(zd, [b, d], { requiresGrad: true });
    const y = tensor(labels, [b], { dtype: "i32" });
    const loss = supConLoss(z, y);
    const rows = Array.from({ length: b }, (_, i) => zd.subarray(i * d, i * d + d));
    const ref = scLossOccurrencesF64(rows, labels, { grad: true });
    // A sum of 4096 anchor terms of ~9 each, each an f32 log-sum-exp over 4095 values.
    assertClose([await loss.item()], [ref.loss], { rtol: 1e-5, atol: 0, label: "loss" });
    loss.backward();
    const gref = new Float64Array(b * d);
    ref.grad!.forEach((g, i) => gref.set(g, i * d));
    // dz = S·z with K = 4096: f32 products of O(1e-3) softmax weights and O(1) coordinates.
    assertClose(await z.grad!.toArray(), gref, { rtol: 1e-3, atol: 2e-5, label: "dz" });
    for (const t of [z, y, loss]) t.dispose();
  },
});

/** Values in [-1, 1) rounded to f32, with a float64 copy. */
function rand(n: number, seed: number): Float64Array {
  return randomArray(n, seed);
}

Deno.test({
  name:
    "loop budget: matmul with K = 300,000 (> 4·65,535) on the register and workgroup tilings, and its gradients",
  ...gpuTest,
  async fn() {
    await setup();
    const [M, K, N] = [2, 300000, 5];
    const ad = rand(M * K, 11);
    const bd = rand(K * N, 12);
    const gd = rand(M * N, 13);
    const cref = matmulRef(ad, bd, { M, N, K });
    const daRef = matmulRef(gd, bd, { M, N: K, K: N, transB: true });
    const dbRef = matmulRef(ad, gd, { M: K, N, K: M, transA: true });
    // Sums of 300,000 products of [-1, 1) values (magnitude ~200): f32 accumulation in runs of ≤ 262,136
    // leaves |error| ≲ 1e-2 (atol 5e-2); a dropped tail of 38,000 products would be off by ~100.
    const TOL = { rtol: 1e-4, atol: 5e-2 };
    try {
      for (const tiling of [REGISTER_TILING, SHARED_TILING]) {
        setGemmTiling(tiling);
        const tag = tiling.useWorkgroupMemory ? "workgroup tiles" : "register";
        const a = tensor(ad, [M, K], { requiresGrad: true });
        const b = tensor(bd, [K, N], { requiresGrad: true });
        const c = matmul(a, b);
        assertClose(await c.toArray(), cref, { ...TOL, label: `${tag} C` });
        if (!tiling.useWorkgroupMemory) {
          // The gradients contract over M and N (short); once is enough (workgroup tiles are slow here).
          c.backward(tensor(gd, [M, N]));
          assertClose(await a.grad!.toArray(), daRef, { rtol: 1e-4, atol: 1e-5, label: `${tag} dA` });
          assertClose(await b.grad!.toArray(), dbRef, { rtol: 1e-4, atol: 1e-5, label: `${tag} dB` });
        }
        // Bᵀ stored [N, K]: both operands contraction-major (the register dot-product kernel).
        const bt = new Float64Array(N * K);
        for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) bt[j * K + k] = bd[k * N + j];
        const btT = tensor(bt, [N, K]);
        const c2 = matmul(a, btT, { transB: true });
        assertClose(await c2.toArray(), cref, { ...TOL, label: `${tag} A·Bᵀ` });
        for (const t of [a, b, c, btT, c2]) t.dispose();
      }
    } finally {
      setGemmTiling(null);
    }
  },
});

Deno.test({
  name:
    "loop budget: linear over a batch of 270,000 rows: the weight and bias gradients contract over the batch",
  ...gpuTest,
  async fn() {
    await setup();
    const [B, IN, OUT] = [270000, 3, 2];
    const xd = rand(B * IN, 14);
    const wd = rand(OUT * IN, 15);
    const rd = rand(B * OUT, 16);
    const x = tensor(xd, [B, IN]);
    const w = tensor(wd, [OUT, IN], { requiresGrad: true });
    const bias = tensor([0.5, -0.25], [OUT], { requiresGrad: true });
    const y = linear(x, w, bias);
    y.backward(tensor(rd, [B, OUT]));
    const dw = matmulRef(rd, xd, { M: OUT, N: IN, K: B, transA: true });
    const db = [0, 1].map((o) => {
      let s = 0;
      for (let i = 0; i < B; i++) s += rd[i * OUT + o];
      return s;
    });
    // Sums of 270,000 products of [-1, 1) values (magnitude ~170).
    assertClose(await w.grad!.toArray(), dw, { rtol: 1e-4, atol: 5e-2, label: "dw" });
    assertClose(await bias.grad!.toArray(), db, { rtol: 1e-4, atol: 5e-2, label: "dbias" });
    for (const t of [x, w, bias, y]) t.dispose();
  },
});

for (
  const d of [
    // 3×3, one 520×520 image: the channels-last route contracts 270,400 pixels in one GEMM.
    { N: 1, C: 4, H: 520, W: 520, O: 8, KH: 3, KW: 3, stride: 1, pad: 1 },
    // Strided 1×1 over two 1040×1040 images: the transposed (dot-product) route, 270,400 pixels per image.
    { N: 2, C: 1, H: 1040, W: 1040, O: 8, KH: 1, KW: 1, stride: 2, pad: 0 },
    // A batch of 256 32×32 images (N·H·W = 262,144), split into image chunks.
    { N: 256, C: 4, H: 32, W: 32, O: 8, KH: 3, KW: 3, stride: 1, pad: 1 },
  ] satisfies ConvDims[]
) {
  Deno.test({
    name: `loop budget: conv2d grad weight over N·OH·OW > 4·65,535 (x [${d.N}, ${d.C}, ${d.H}, ${d.W}], ` +
      `${d.KH}×${d.KW} stride ${d.stride})`,
    ...gpuTest,
    async fn() {
      await setup();
      const OH = Math.floor((d.H + 2 * d.pad - d.KH) / d.stride) + 1;
      const OW = Math.floor((d.W + 2 * d.pad - d.KW) / d.stride) + 1;
      const xd = rand(d.N * d.C * d.H * d.W, 17);
      const wd = rand(d.O * d.C * d.KH * d.KW, 18);
      const dyd = rand(d.N * d.O * OH * OW, 19);
      const x = tensor(xd, [d.N, d.C, d.H, d.W]);
      const w = tensor(wd, [d.O, d.C, d.KH, d.KW], { requiresGrad: true });
      const y = conv2d(x, w, { stride: d.stride, padding: d.pad });
      y.backward(tensor(dyd, y.shape));
      // Sums of ~270,000 products of [-1, 1) values (magnitude ~170); a dropped tail would be off by ≥ 1.
      assertClose(await w.grad!.toArray(), conv2dGradWeightRef(dyd, xd, d), {
        rtol: 1e-4,
        atol: 5e-2,
        label: "dw",
      });
      for (const t of [x, w, y]) t.dispose();
    },
  });
}

Deno.test({
  name: "loop budget: scSphereDescent with N = 40 points runs 200 steps per submission as it runs one",
  ...gpuTest,
  async fn() {
    await setup();
    const [N, h, steps] = [40, 3, 200];
    const table = MultisetTable.fromCounts([new Array<number>(N).fill(1)], N);
    const z0 = randomArray(N * h, 20);
    const labels = Array.from({ length: N }, (_, i) => i % 3);
    const results: Float32Array[] = [];
    for (const per of [1, steps]) {
      const res = await scSphereDescent(
        tensor(z0, [1, N, h]),
        tensor(labels, [1, N], { dtype: "i32" }),
        table,
        {
          steps,
          lr: 0.02,
          power: 2,
          stepsPerDispatch: per,
        },
      );
      results.push(Float32Array.from([...await res.z.toArray(), ...await res.lastLoss.toArray()]));
      res.z.dispose();
      res.lastLoss.dispose();
    }
    // The same f32 arithmetic either way: identical.
    assertClose(results[1], results[0], { rtol: 0, atol: 0, label: "200 steps per submission vs 1" });
    table.dispose();
  },
});

Deno.test({
  name: "loop budget: ScMultisetTrainer step at N = 48, h = 32 (N²·h > 65,535) vs the float64 projected step",
  ...gpuTest,
  async fn() {
    await setup();
    const [N, h, lr] = [48, 32, 0.5];
    const labels = Array.from({ length: N }, (_, i) => i % 4);
    const raw = randomArray(N * h, 21);
    const x = new Float64Array(N * h);
    for (let i = 0; i < N; i++) {
      const nrm = Math.hypot(...raw.subarray(i * h, i * h + h));
      for (let t = 0; t < h; t++) x[i * h + t] = Math.fround(raw[i * h + t] / nrm);
    }
    // Three batches of 16 distinct points (4 of each class); every point in exactly one of them.
    const rows = [0, 1, 2].map((j) =>
      Array.from({ length: N }, (_, i) => (Math.floor(i / 4) % 3 === j ? 1 : 0))
    );
    const table = MultisetTable.fromCounts(rows, N);
    // Float64: mean over the table of the batch losses and of their gradients.
    let lossRef = 0;
    const g = new Float64Array(N * h);
    for (let t = 0; t < table.count; t++) {
      const idx = table.indices(t);
      const U = Array.from(idx, (i) => x.subarray(i * h, i * h + h));
      const r = scLossOccurrencesF64(U, Array.from(idx, (i) => labels[i]), { grad: true });
      lossRef += r.loss / table.count;
      idx.forEach((i, p) => {
        for (let d = 0; d < h; d++) g[i * h + d] += r.grad![p][d] / table.count;
      });
    }
    const next = new Float64Array(N * h);
    for (let i = 0; i < N; i++) {
      const zi = x.subarray(i * h, i * h + h);
      const gi = g.subarray(i * h, i * h + h);
      const nz = Math.hypot(...zi);
      let gr = 0;
      for (let d = 0; d < h; d++) gr += (gi[d] * zi[d]) / nz;
      const v = Array.from(zi, (zd, d) => zd - lr * (gi[d] - (gr * zd) / nz));
      const nv = Math.hypot(...v);
      for (let d = 0; d < h; d++) next[i * h + d] = v[d] / nv;
    }
    const z = tensor(x, [N, h]);
    const y = tensor(labels, [N], { dtype: "i32" });
    const tr = new ScMultisetTrainer(z, y, table, { lr, steps: 1, momentum: 0 });
    tr.step();
    assertClose(await tr.lossLog(), [lossRef], { rtol: 2e-6, atol: 0, label: "trainer loss" });
    assertClose(await z.toArray(), next, { rtol: 0, atol: 2e-5, label: "trainer step" });
    tr.dispose();
    for (const t of [z, y]) t.dispose();
    table.dispose();
  },
});

Deno.test({
  name: "loop budget: sizes no kernel can take throw errors naming the op and the size",
  ...gpuTest,
  async fn() {
    await setup();
    const wide = tensor(new Float32Array(40000), [1, 40000]);
    const labels = tensor([0], [1], { dtype: "i32" });
    assert.throws(
      () => crossEntropy(wide, labels),
      (e: Error) => e instanceof ShapeError && /crossEntropy.*40000 classes.*65535/.test(e.message),
    );
    assert.throws(
      () => normalizeToSphere(wide, 1),
      (e: Error) => e instanceof ShapeError && /normalizeToSphere.*40000/.test(e.message),
    );
    const wider = tensor(new Float32Array(70000), [1, 70000]);
    assert.throws(
      () => argmax(wider),
      (e: Error) => e instanceof ShapeError && /argmax.*70000/.test(e.message),
    );
    // gatherRows forward takes any number of indices; its backward links them with O(b) loops.
    const src = tensor(new Float32Array(4), [4, 1], { requiresGrad: true });
    const g = gatherRows(src, tensor(new Int32Array(70000), [70000], { dtype: "i32" }));
    assert.throws(() => g.backward(tensor(new Float32Array(70000), [70000, 1])), /gatherRows.*70000 indices/);
    // The template itself refuses a contraction past the budget (dispatchGemm splits it first).
    const hooks = { decls: "", readA: "return 0.0;", readB: "return 0.0;", writeC: "" };
    assert.throws(
      () => gemmKernel({ M: 1, N: 1, K: 300000, batch: 1, hooks, tiling: REGISTER_TILING }),
      /gemm: .*K = 300000/,
    );
    // All-multiset kernels: one invocation's Gram row, the trainer's update row, the descent's step.
    const table = MultisetTable.fromCounts([[1, 1]], 2);
    const two = tensor([0, 0], [2], { dtype: "i32" });
    const big = tensor(new Float32Array(2 * 30000), [2, 30000]);
    assert.throws(
      () => new ScMultisetTrainer(big, two, table, { lr: 0.1, steps: 1 }),
      /ScMultisetTrainer.*\[2, 30000\]/,
    );
    await assert.rejects(
      scSphereDescent(
        tensor(new Float32Array(2 * 20000), [1, 2, 20000]),
        tensor([0, 0], [1, 2], { dtype: "i32" }),
        table,
        {
          steps: 1,
          lr: 0.1,
        },
      ),
      /scSphereDescent.*20000/,
    );
    table.dispose();
  },
});

Deno.test("loop budget: the static WGSL check counts literal loop nests and ignores run-time bounds", () => {
  const one = "for (var k = 0u; k < 70000u; k++) { s += 1.0; }";
  assert.equal(literalLoopTrips(one).total, 70001);
  assert.match(loopBudgetCheck(one)!, /70001 iterations.*k < 70000u/);
  // 300 runs of an inner loop of 300 (+ the outer loop): 300·301 + 301.
  const nest = `for (var a = 0u; a < 300u; a = a + 1u) {
    for (var k = 0u; k < 300u; k += 1u) { if (k == 3u) { continue; } }
  }`;
  assert.equal(literalLoopTrips(nest).total, 300 * 301 + 301);
  assert.notEqual(loopBudgetCheck(nest), null);
  // Steps, `<=`, comments; run-time bounds are not counted.
  assert.equal(literalLoopTrips("for (var k = 4u; k <= 20u; k = k + 4u) {}").total, 6);
  assert.equal(
    literalLoopTrips("// for (var k = 0u; k < 99999u; k++) {}\nfor (var r = r0; r < r1; r++) {}").total,
    0,
  );
  assert.equal(loopBudgetCheck("for (var k = 0u; k < 65534u; k++) {}"), null);
});
