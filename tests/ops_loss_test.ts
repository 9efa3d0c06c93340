/**
 * Losses and sphere normalisation against float64 references (tests/reference/loss_ref.ts), with
 * poisoned outputs; backwards against float64 central differences of the references.
 */
import assert from "node:assert/strict";
import { assertClose, dot, numericGrad, randomArray, randomInts, rng, setup } from "./util.ts";
import { test } from "./harness.ts";
import { ShapeError, tensor } from "../engine/tensor.ts";
import { crossEntropy, normalizeToSphere, supConAnchorLosses, supConLoss } from "../engine/ops/loss.ts";
import { crossEntropyRef, normalizeToSphereRef, supConLossRef } from "./reference/loss_ref.ts";

/** Rows of `u` scaled to norm `radius` (float64, rounded to float32). */
function sphereRows(u: Float64Array, rows: number, d: number, radius: number): Float64Array {
  return normalizeToSphereRef(u, rows, d, radius).map(Math.fround);
}

test({
  name: "normalizeToSphere: forward and backward vs float64 (rows 37, d 13, ρ = √10)",
  fn: async () => {
    await setup();
    const rows = 37, d = 13, radius = Math.sqrt(10);
    const u0 = randomArray(rows * d, 1);
    const u = tensor(u0, [rows, d], { requiresGrad: true });
    const z = normalizeToSphere(u, radius);
    assert.deepEqual(z.shape, [rows, d]);
    assertClose(await z.toArray(), normalizeToSphereRef(u0, rows, d, radius), {
      rtol: 1e-5,
      atol: 1e-6,
      label: "z",
    });
    const r = randomArray(rows * d, 2);
    z.backward(tensor(r, [rows, d]));
    const expected = numericGrad((x) => dot(normalizeToSphereRef(x, rows, d, radius), r), u0);
    assertClose(await u.grad!.toArray(), expected, { rtol: 1e-4, atol: 1e-5, label: "du" });
  },
});

test({
  name: "normalizeToSphere: a zero row gives zeros (epsilon guard), not NaN; shape errors",
  fn: async () => {
    await setup();
    const z = normalizeToSphere(tensor([0, 0, 0, 3, 4, 0], [2, 3]), 2);
    assertClose(await z.toArray(), [0, 0, 0, 1.2, 1.6, 0], { rtol: 1e-6, atol: 1e-7, label: "z" });
    assert.throws(() => normalizeToSphere(tensor([1, 2, 3]), 1), ShapeError);
    assert.throws(() => normalizeToSphere(tensor([1, 2], [1, 2]), 0), ShapeError);
  },
});

test({
  name: "crossEntropy: mean and sum vs float64, backward vs finite differences (B 37, K 11)",
  fn: async () => {
    await setup();
    const rows = 37, k = 11;
    const x0 = randomArray(rows * k, 3, -4, 4);
    const y = randomInts(rows, k, 4);
    const labels = tensor(y, [rows], { dtype: "i32" });
    for (const reduction of ["mean", "sum"] as const) {
      const x = tensor(x0, [rows, k], { requiresGrad: true });
      const loss = crossEntropy(x, labels, { reduction });
      assert.deepEqual(loss.shape, []);
      const ref = crossEntropyRef(x0, y, rows, k, reduction);
      assertClose([await loss.item()], [ref], { rtol: 1e-5, atol: 1e-6, label: `loss ${reduction}` });
      loss.backward();
      const g = numericGrad((v) => crossEntropyRef(v, y, rows, k, reduction), x0);
      assertClose(await x.grad!.toArray(), g, { rtol: 1e-4, atol: 1e-6, label: `dx ${reduction}` });
    }
  },
});

test({
  name: "crossEntropy: large logits stay finite; an out-of-range label gives NaN; shape errors",
  fn: async () => {
    await setup();
    const x0 = [1000, 0, -1000, 50, 51, 52];
    const loss = crossEntropy(tensor(x0, [2, 3]), tensor([0, 1], [2], { dtype: "i32" }), {
      reduction: "sum",
    });
    const expected = 0 + 1 + Math.log(1 + Math.exp(-1) + Math.exp(-2)); // rows: label 0 of [1000, 0, −1000]; label 1 of [50, 51, 52]
    assertClose([await loss.item()], [expected], { rtol: 1e-5, atol: 1e-5, label: "stable" });
    const bad = crossEntropy(tensor(x0, [2, 3]), tensor([0, 3], [2], { dtype: "i32" }));
    assert(Number.isNaN(await bad.item()), "label 3 of K = 3 must give NaN");
    const neg = crossEntropy(tensor(x0, [2, 3]), tensor([-1, 0], [2], { dtype: "i32" }));
    assert(Number.isNaN(await neg.item()), "label −1 must give NaN");
    assert.throws(() => crossEntropy(tensor(x0, [2, 3]), tensor([0, 1], [2])), ShapeError); // f32 labels
    assert.throws(
      () => crossEntropy(tensor(x0, [2, 3]), tensor([0, 1, 2], [3], { dtype: "i32" })),
      ShapeError,
    );
  },
});

async function gpuSupCon(z0: ArrayLike<number>, y: ArrayLike<number>, b: number, d: number): Promise<number> {
  const loss = supConLoss(tensor(z0, [b, d]), tensor(y, [b], { dtype: "i32" }));
  assert.deepEqual(loss.shape, []);
  return await loss.item();
}

test({
  name: "supConLoss: Eq. 6 vs float64 (b 37, d 13; duplicates, a class of three identical points)",
  fn: async () => {
    await setup();
    const b = 37, d = 13;
    const z0 = sphereRows(randomArray(b * d, 5), b, d, 1);
    const y = randomInts(b, 5, 6);
    assertClose([await gpuSupCon(z0, y, b, d)], [supConLossRef(z0, y, b, d).loss], {
      rtol: 1e-5,
      atol: 1e-5,
      label: "random",
    });
    // Duplicated occurrences: rows 10 and 20 copy row 3 (same label), rows 30, 31, 32 are one point.
    const zd = Float64Array.from(z0);
    const yd = Int32Array.from(y);
    for (const j of [10, 20]) {
      zd.set(z0.subarray(3 * d, 4 * d), j * d);
      yd[j] = y[3];
    }
    for (const j of [31, 32]) {
      zd.set(z0.subarray(30 * d, 31 * d), j * d);
      yd[j] = 7; // a class of its own: three identical points
    }
    yd[30] = 7;
    const ref = supConLossRef(zd, yd, b, d);
    assertClose([await gpuSupCon(zd, yd, b, d)], [ref.loss], { rtol: 1e-5, atol: 1e-5, label: "duplicates" });
    // Per-anchor terms too (the class of three identical points included).
    const perAnchor = await supConAnchorLosses(tensor(zd, [b, d]), tensor(yd, [b], { dtype: "i32" }))
      .toArray();
    assertClose(perAnchor, ref.perAnchor, { rtol: 1e-5, atol: 2e-6, label: "per anchor" });
  },
});

test({
  name: "supConLoss: singletons give 0; b = 1 and b = 2; ρ = √10 far apart at rtol 1e-5",
  fn: async () => {
    await setup();
    const b = 37, d = 13;
    const z0 = sphereRows(randomArray(b * d, 7), b, d, Math.sqrt(10));
    const singletons = Int32Array.from({ length: b }, (_, i) => i);
    assert.deepEqual(await gpuSupCon(z0, singletons, b, d), 0);
    assert.deepEqual(await gpuSupCon([0.6, 0.8], [3], 1, 2), 0);
    assert.deepEqual(await gpuSupCon([0.6, 0.8, 1, 0], [0, 1], 2, 2), 0);
    // Two occurrences of one class: each anchor's only other row is its positive → log(1) = 0 each.
    assertClose([await gpuSupCon([0.6, 0.8, 1, 0], [2, 2], 2, 2)], [0], {
      rtol: 0,
      atol: 1e-6,
      label: "b=2",
    });
    // ρ² = 10, classes far apart: an antipodal pair per class on 4 axes plus random points.
    const y = randomInts(b, 4, 8);
    const zf = Float64Array.from(z0);
    for (let i = 0; i < b; i++) {
      for (let t = 0; t < d; t++) zf[i * d + t] = 0.05 * zf[i * d + t] + (t === y[i] ? 1 : 0);
    }
    const zs = sphereRows(zf, b, d, Math.sqrt(10));
    assertClose([await gpuSupCon(zs, y, b, d)], [supConLossRef(zs, y, b, d).loss], {
      rtol: 1e-5,
      atol: 1e-5,
      label: "rho^2 = 10",
    });
    assertClose([await gpuSupCon(z0, y, b, d)], [supConLossRef(z0, y, b, d).loss], {
      rtol: 1e-5,
      atol: 1e-5,
      label: "rho^2 = 10 random",
    });
    assert.throws(
      () => supConLoss(tensor(z0, [b, d]), tensor(y.subarray(1), [b - 1], { dtype: "i32" })),
      ShapeError,
    );
  },
});

test({
  name: "supConLoss: backward vs float64 finite differences, alone and through normalizeToSphere",
  fn: async () => {
    await setup();
    const b = 37, d = 13;
    const y = randomInts(b, 4, 9);
    y[5] = y[6] = 11; // an isolated duplicated pair
    y[7] = 12; // a singleton
    // Plain z (not on a sphere: the loss is defined for any z).
    const z0 = randomArray(b * d, 10, -0.5, 0.5);
    z0.set(z0.subarray(5 * d, 6 * d), 6 * d);
    const z = tensor(z0, [b, d], { requiresGrad: true });
    const labels = tensor(y, [b], { dtype: "i32" });
    supConLoss(z, labels).backward();
    const g = numericGrad((x) => supConLossRef(x, y, b, d).loss, z0);
    assertClose(await z.grad!.toArray(), g, { rtol: 1e-3, atol: 1e-5, label: "dz" });
    // Composite: u → ρ·u/‖u‖ → ℓ_SC with ρ = √10.
    const radius = Math.sqrt(10);
    const u0 = randomArray(b * d, 11);
    const u = tensor(u0, [b, d], { requiresGrad: true });
    const loss = supConLoss(normalizeToSphere(u, radius), labels);
    const refLoss = (x: Float64Array) => supConLossRef(normalizeToSphereRef(x, b, d, radius), y, b, d).loss;
    assertClose([await loss.item()], [refLoss(u0)], { rtol: 1e-5, atol: 1e-5, label: "composite loss" });
    loss.backward();
    assertClose(await u.grad!.toArray(), numericGrad(refLoss, u0), { rtol: 1e-3, atol: 1e-4, label: "du" });
  },
});

test({
  name: "supConLoss: b = 4096, d = 512 is finite and matches float64 on a few anchors",
  // The same kernels as the small cases at a large shape; the "gpu" strategy's 4096² Gram takes two
  // minutes on SwiftShader.
  dawn: "once",
  fn: async () => {
    await setup();
    const b = 4096, d = 512, radius = Math.sqrt(10);
    const z0 = Float32Array.from(sphereRows(randomArray(b * d, 12), b, d, radius));
    const y = randomInts(b, 10, 13);
    const z = tensor(z0, [b, d], { requiresGrad: true });
    const labels = tensor(y, [b], { dtype: "i32" });
    const t0 = performance.now();
    const perAnchor = await supConAnchorLosses(z, labels).toArray();
    const loss = supConLoss(z, labels);
    const total = await loss.item();
    const t1 = performance.now();
    loss.backward();
    const grad = await z.grad!.toArray();
    const t2 = performance.now();
    console.log(`b=4096 d=512: forward ${(t1 - t0).toFixed(0)} ms, backward ${(t2 - t1).toFixed(0)} ms`);
    assert(Number.isFinite(total));
    assert(grad.every(Number.isFinite), "gradient must be finite");
    let sum = 0;
    for (const v of perAnchor) sum += v;
    assertClose([total], [sum], { rtol: 1e-5, atol: 0, label: "sum of anchors" });
    const r = rng(14);
    for (let n = 0; n < 4; n++) {
      const i = Math.floor(r() * b);
      // Anchor i's term, float64: LSE over k ≠ i minus the mean over positives.
      const s = new Float64Array(b);
      for (let k = 0; k < b; k++) {
        s[k] = dot(z0.subarray(i * d, (i + 1) * d), z0.subarray(k * d, (k + 1) * d));
      }
      let m = -Infinity, pos = 0, count = 0;
      for (let k = 0; k < b; k++) {
        if (k === i) continue;
        m = Math.max(m, s[k]);
        if (y[k] === y[i]) (pos += s[k], count++);
      }
      let e = 0;
      for (let k = 0; k < b; k++) if (k !== i) e += Math.exp(s[k] - m);
      assertClose([perAnchor[i]], [m + Math.log(e) - pos / count], {
        rtol: 1e-5,
        atol: 1e-5,
        label: `anchor ${i}`,
      });
    }
  },
});
