import assert from "node:assert/strict";
import { assertClose, dot, numericGrad, randomArray, setup } from "./util.ts";
import { test } from "./harness.ts";
import { ShapeError, tensor } from "../engine/tensor.ts";
import { max, mean, sum } from "../engine/ops/reduce.ts";
import { globalAvgPool } from "../engine/ops/pool.ts";
import { reduceRef, size } from "./reference/elementwise_ref.ts";

// Forward vs float64: rtol 1e-5, atol 1e-5 (sums of ≤ a few hundred values of magnitude ≤ 1).
// Backward vs float64 central differences of the reference projected on a random r: rtol 1e-4, atol 1e-5.
const FWD = { rtol: 1e-5, atol: 1e-5 };
const BWD = { rtol: 1e-4, atol: 1e-5 };

const OPS = { sum, mean, max } as const;

const CASES: [number[], number[] | number | undefined, boolean][] = [
  [[3, 5, 7], 0, false],
  [[3, 5, 7], 1, false],
  [[3, 5, 7], 2, true],
  [[3, 5, 7], -1, false],
  [[3, 5, 7], [0, 2], false],
  [[3, 5, 7], [0, 1], true],
  [[3, 5, 7], [1, 2], false],
  [[3, 5, 7], undefined, false],
  [[3, 5, 7], undefined, true],
  [[2, 3, 4, 5], [0, 2], false],
  [[2, 3, 4, 5], [1, 3], true],
  [[4, 1, 6], [1], false],
  [[13], 0, false],
];

test({
  name: "reduce: sum/mean/max over each axis, several axes, keepDims; backward vs finite differences",
  fn: async () => {
    await setup();
    let seed = 7;
    for (const [kind, op] of Object.entries(OPS) as [keyof typeof OPS, typeof sum][]) {
      for (const [shape, axes, keepDims] of CASES) {
        const label = `${kind} ${JSON.stringify(shape)} axes ${JSON.stringify(axes)} keep ${keepDims}`;
        const xd = randomArray(size(shape), seed++);
        const list = axes === undefined ? undefined : typeof axes === "number" ? [axes] : axes;
        const ref = reduceRef({ data: xd, shape }, list, keepDims, kind);
        const x = tensor(xd, shape, { requiresGrad: true });
        const y = op(x, axes, keepDims);
        assert.deepEqual(y.shape, ref.shape, label);
        assertClose(await y.toArray(), ref.data, { ...FWD, label });
        const r = randomArray(ref.data.length, seed++);
        y.backward(tensor(r, y.shape));
        // Random data has no ties, so max is differentiable at x.
        const f = (v: Float64Array) => dot(reduceRef({ data: v, shape }, list, keepDims, kind).data, r);
        assertClose(await x.grad!.toArray(), numericGrad(f, xd), { ...BWD, label: `${label} grad` });
        x.dispose();
        y.dispose();
      }
    }
  },
});

test({
  name: "reduce: two-pass reductions (long axes, few outputs) match float64",
  fn: async () => {
    await setup();
    // [3, 4099] over axis 1 (contiguous runs), [5000, 3] over axis 0 (strided), [7, 600, 5] over [0, 2].
    const cases: [number[], number[]][] = [[[3, 4099], [1]], [[5000, 3], [0]], [[7, 600, 5], [0, 2]]];
    let seed = 300;
    for (const [shape, axes] of cases) {
      const xd = randomArray(size(shape), seed++);
      for (const kind of ["sum", "mean", "max"] as const) {
        const x = tensor(xd, shape, { requiresGrad: kind === "max" });
        const y = OPS[kind](x, axes);
        const ref = reduceRef({ data: xd, shape }, axes, false, kind);
        assertClose(await y.toArray(), ref.data, { rtol: 1e-5, atol: 1e-4, label: `${kind} ${shape}` });
        if (kind === "max") {
          // The gradient of max lands on the argmax only: 1 per output, 0 elsewhere.
          y.backward(tensor(new Float32Array(y.size).fill(1), y.shape));
          const gx = Array.from(await x.grad!.toArray());
          const total = gx.reduce((p, v) => p + v, 0);
          assert.equal(total, y.size);
          assert.equal(gx.filter((v) => v !== 0).length, y.size);
        }
        x.dispose();
        y.dispose();
      }
    }
  },
});

test({
  name: "reduce: sum of 1,000,003 elements within rtol 1e-5 of float64",
  fn: async () => {
    await setup();
    const n = 1_000_003;
    for (const [lo, hi, seed] of [[0, 1, 11], [-1, 1.1, 12]] as const) {
      const xd = randomArray(n, seed, lo, hi);
      let expected = 0;
      for (const v of xd) expected += v;
      const x = tensor(xd, [n]);
      const s = sum(x);
      assert.deepEqual(s.shape, []);
      const got = await s.item();
      assertClose([got], [expected], { rtol: 1e-5, atol: 0, label: `sum U(${lo}, ${hi})` });
      const m = await mean(x).item();
      assertClose([m], [expected / n], { rtol: 1e-5, atol: 0, label: "mean" });
      x.dispose();
    }
  },
});

test({
  name: "reduce: max ties share the gradient equally; errors name the op",
  fn: async () => {
    await setup();
    const x = tensor([[1, 3, 3, 0], [2, 2, 2, -1], [5, 4, 3, 2]], undefined, { requiresGrad: true });
    const y = max(x, 1);
    assert.deepEqual([...await y.toArray()], [3, 2, 5]);
    y.backward(tensor([6, 6, 6], [3]));
    assert.deepEqual([...await x.grad!.toArray()], [0, 3, 3, 0, 2, 2, 2, 0, 6, 0, 0, 0]);
    assert.throws(
      () => sum(x, 2),
      (e: Error) => e instanceof ShapeError && /sum.*axis 2.*\[3, 4\]/.test(e.message),
    );
    assert.throws(() => mean(x, [1, -1]), ShapeError);
    assert.throws(() => sum(tensor([1, 2], [2], { dtype: "i32" })), ShapeError);
  },
});

test({
  name: "pool: globalAvgPool NCHW → [N, C] and its backward g/(H·W)",
  fn: async () => {
    await setup();
    const shape = [3, 5, 7, 6];
    const xd = randomArray(size(shape), 41);
    const x = tensor(xd, shape, { requiresGrad: true });
    const y = globalAvgPool(x);
    assert.deepEqual(y.shape, [3, 5]);
    const ref = reduceRef({ data: xd, shape }, [2, 3], false, "mean");
    assertClose(await y.toArray(), ref.data, { ...FWD, label: "globalAvgPool" });
    const r = randomArray(15, 42);
    y.backward(tensor(r, [3, 5]));
    const expected = new Float64Array(xd.length);
    for (let i = 0; i < xd.length; i++) expected[i] = r[Math.floor(i / 42)] / 42;
    assertClose(await x.grad!.toArray(), expected, { rtol: 1e-6, atol: 1e-7, label: "globalAvgPool grad" });
    assert.throws(() => globalAvgPool(tensor([1, 2, 3], [3])), ShapeError);
  },
});
