import assert from "node:assert/strict";
import { assertClose, dot, numericGrad, randomArray, randomInts, setup } from "./util.ts";
import { test } from "./harness.ts";
import { ShapeError, tensor } from "../engine/tensor.ts";
import { accuracy, argmax, concat, flatten, gatherRows, reshape, transpose2d } from "../engine/ops/shape.ts";
import { mul } from "../engine/ops/elementwise.ts";
import { argmaxRef, gatherRowsRef } from "./reference/elementwise_ref.ts";

test({
  name: "shape: reshape is a view with -1 inference; flatten; backward reshapes back",
  fn: async () => {
    await setup();
    const xd = randomArray(210, 1);
    const x = tensor(xd, [3, 5, 7, 2], { requiresGrad: true });
    const y = reshape(x, [5, -1, 7]);
    assert.deepEqual(y.shape, [5, 6, 7]);
    assert.equal(y.storage, x.storage);
    assertClose(await y.toArray(), xd, { rtol: 0, atol: 0, label: "reshape" });
    const f = flatten(x);
    assert.deepEqual(f.shape, [3, 70]);
    assert.deepEqual(flatten(x, 2).shape, [3, 5, 14]);
    assert.deepEqual(flatten(x, 0).shape, [210]);
    // Backward through a view: d/dx Σ r·reshape(x) = r reshaped.
    const r = randomArray(210, 2);
    const z = mul(y, tensor(r, [5, 6, 7]));
    z.backward(tensor(new Float32Array(210).fill(1), [5, 6, 7]));
    assert.deepEqual(x.grad!.shape, [3, 5, 7, 2]);
    assertClose(await x.grad!.toArray(), r, { rtol: 0, atol: 0, label: "reshape grad" });
    assert.throws(
      () => reshape(x, [4, -1]),
      (e: Error) => e instanceof ShapeError && /reshape/.test(e.message),
    );
    assert.throws(() => reshape(x, [-1, -1]), ShapeError);
    assert.throws(() => reshape(x, [211]), ShapeError);
  },
});

test({
  name: "shape: transpose2d and concat forward/backward",
  fn: async () => {
    await setup();
    const xd = randomArray(35, 3);
    const x = tensor(xd, [5, 7], { requiresGrad: true });
    const t = transpose2d(x);
    assert.deepEqual(t.shape, [7, 5]);
    const expected = new Float64Array(35);
    for (let i = 0; i < 5; i++) for (let j = 0; j < 7; j++) expected[j * 5 + i] = xd[i * 7 + j];
    assertClose(await t.toArray(), expected, { rtol: 0, atol: 0, label: "transpose" });
    const r = randomArray(35, 4);
    t.backward(tensor(r, [7, 5]));
    const gexp = new Float64Array(35);
    for (let i = 0; i < 5; i++) for (let j = 0; j < 7; j++) gexp[i * 7 + j] = r[j * 5 + i];
    assertClose(await x.grad!.toArray(), gexp, { rtol: 0, atol: 0, label: "transpose grad" });

    const a = tensor(randomArray(6, 5), [2, 3], { requiresGrad: true });
    const b = tensor(randomArray(3, 6), [1, 3], { requiresGrad: true });
    const c = tensor(randomArray(9, 7), [3, 3], { requiresGrad: true });
    const cat = concat([a, b, c]);
    assert.deepEqual(cat.shape, [6, 3]);
    const all = [...await a.toArray(), ...await b.toArray(), ...await c.toArray()];
    assertClose(await cat.toArray(), all, { rtol: 0, atol: 0, label: "concat" });
    const rc = randomArray(18, 8);
    cat.backward(tensor(rc, [6, 3]));
    assertClose(await a.grad!.toArray(), rc.slice(0, 6), { rtol: 0, atol: 0, label: "concat ga" });
    assertClose(await b.grad!.toArray(), rc.slice(6, 9), { rtol: 0, atol: 0, label: "concat gb" });
    assertClose(await c.grad!.toArray(), rc.slice(9), { rtol: 0, atol: 0, label: "concat gc" });
    assert.throws(() => concat([a, tensor([1, 2], [1, 2])]), ShapeError);
    assert.throws(() => transpose2d(tensor([1, 2, 3], [3])), ShapeError);
  },
});

test({
  name: "shape: gatherRows forward, out-of-range rows, and backward with duplicate indices",
  fn: async () => {
    await setup();
    const n = 11;
    const d = 13; // [11, 13] viewed as [11, 13] rows; also as [11, 1, 13]
    const xd = randomArray(n * d, 9);
    const idx = Int32Array.from([3, 0, 3, 10, 7, 3, 0, 5, 9]); // 3 three times, 0 twice; rows 1,2,4,6,8 unused
    const b = idx.length;
    const x = tensor(xd, [n, 1, d], { requiresGrad: true });
    const indices = tensor(idx, [b], { dtype: "i32" });
    const y = gatherRows(x, indices);
    assert.deepEqual(y.shape, [b, 1, d]);
    assertClose(await y.toArray(), gatherRowsRef(xd, n, d, idx), { rtol: 0, atol: 0, label: "gather" });
    const r = randomArray(b * d, 10);
    y.backward(tensor(r, y.shape));
    const num = numericGrad((v) => dot(gatherRowsRef(v, n, d, idx), r), xd);
    assertClose(await x.grad!.toArray(), num, { rtol: 1e-5, atol: 1e-6, label: "gather grad" });

    // Larger random case with many duplicates, u32 indices, and out-of-range rows (zeros, no gradient).
    const n2 = 37;
    const d2 = 5;
    const idx2 = Uint32Array.from(randomInts(300, n2 + 3, 11)); // values n2..n2+2 are out of range
    const x2d = randomArray(n2 * d2, 12);
    const x2 = tensor(x2d, [n2, d2], { requiresGrad: true });
    const y2 = gatherRows(x2, tensor(idx2, [300], { dtype: "u32" }));
    assertClose(await y2.toArray(), gatherRowsRef(x2d, n2, d2, idx2), { rtol: 0, atol: 0, label: "gather2" });
    const r2 = randomArray(300 * d2, 13);
    y2.backward(tensor(r2, [300, d2]));
    const expected = new Float64Array(n2 * d2);
    for (let p = 0; p < 300; p++) {
      if (idx2[p] >= n2) continue;
      for (let j = 0; j < d2; j++) expected[idx2[p] * d2 + j] += r2[p * d2 + j];
    }
    assertClose(await x2.grad!.toArray(), expected, { rtol: 1e-5, atol: 1e-5, label: "gather2 grad" });
    assert.throws(() => gatherRows(x2, tensor([1, 2], [2])), ShapeError);
  },
});

test({
  name: "shape: argmax (first on ties) and accuracy on known data",
  fn: async () => {
    await setup();
    const logits = [
      [0.1, 0.9, 0.3], // 1
      [2.0, -1.0, 2.0], // tie → 0
      [-5, -4, -6], // 1
      [0, 0, 0], // 0
      [1, 2, 3], // 2
    ];
    const x = tensor(logits);
    const am = argmax(x);
    assert.equal(am.dtype, "i32");
    assert.deepEqual([...await am.toArray()], [1, 0, 1, 0, 2]);
    const labels = tensor([1, 2, 1, 0, 0], [5], { dtype: "i32" });
    const acc = accuracy(x, labels);
    assert.deepEqual(acc.shape, []);
    assertClose([await acc.item()], [3 / 5], { rtol: 1e-6, atol: 0, label: "accuracy known" });
    // Random larger case vs the reference.
    const rows = 301;
    const k = 10;
    const xd = randomArray(rows * k, 20);
    const xr = tensor(xd, [rows, k]);
    const ref = argmaxRef(xd, rows, k);
    assert.deepEqual([...await argmax(xr).toArray()], [...ref]);
    const lab = randomInts(rows, k, 21);
    let correct = 0;
    for (let i = 0; i < rows; i++) if (lab[i] === ref[i]) correct++;
    const got = await accuracy(xr, tensor(lab, [rows], { dtype: "i32" })).item();
    assertClose([got], [correct / rows], { rtol: 1e-6, atol: 0, label: "accuracy" });
    assert.throws(() => accuracy(x, tensor([1, 2], [2], { dtype: "i32" })), ShapeError);
    // argmax over the last axis of a 3-D tensor keeps the leading axes.
    assert.deepEqual(argmax(tensor(xd.slice(0, 60), [2, 3, 10])).shape, [2, 3]);
  },
});
