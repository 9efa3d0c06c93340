import assert from "node:assert/strict";
import { assertClose, dot, numericGrad, randomArray, setup } from "./util.ts";
import { test } from "./harness.ts";
import { ShapeError, tensor } from "../engine/tensor.ts";
import {
  add,
  addScalar,
  clampMin,
  div,
  exp,
  log,
  mul,
  mulScalar,
  neg,
  powScalar,
  relu,
  sqrt,
  square,
  sub,
} from "../engine/ops/elementwise.ts";
import { binaryRef, size } from "./reference/elementwise_ref.ts";
import { tidy } from "../engine/scope.ts";

// Forward: float32 kernels vs float64 references, rtol 1e-5 / atol 1e-6 (one rounding per element).
// Backward: vs float64 central differences of the float64 reference projected on a random r,
// rtol 1e-4 / atol 1e-5.
const FWD = { rtol: 1e-5, atol: 1e-6 };
const BWD = { rtol: 1e-4, atol: 1e-5 };

const BINARY: Record<string, [typeof add, (x: number, y: number) => number]> = {
  add: [add, (x, y) => x + y],
  sub: [sub, (x, y) => x - y],
  mul: [mul, (x, y) => x * y],
  div: [div, (x, y) => x / y],
};

const SHAPE_PAIRS: [number[], number[]][] = [
  [[3, 5, 7], [3, 5, 7]],
  [[3, 5, 7], [5, 1]],
  [[3, 5, 7], [1, 7]],
  [[3, 5, 7], [1]],
  [[3, 5, 7], []],
  [[5, 1], [3, 1, 7]],
  [[3, 1, 7], [1, 5, 1]],
  [[7], [3, 5, 7]],
];

test({
  name: "elementwise: add/sub/mul/div broadcast forward and backward vs float64",
  fn: async () => {
    await setup();
    let seed = 1;
    for (const [name, [op, f]] of Object.entries(BINARY)) {
      for (const [sa, sb] of SHAPE_PAIRS) {
        const ad = randomArray(size(sa), seed++);
        const bd = name === "div" ? randomArray(size(sb), seed++, 0.5, 1.5) : randomArray(size(sb), seed++);
        const label = `${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`;
        const ref = binaryRef({ data: ad, shape: sa }, { data: bd, shape: sb }, f);
        const r = randomArray(ref.data.length, seed++);
        const a = tensor(ad, sa, { requiresGrad: true });
        const b = tensor(bd, sb, { requiresGrad: true });
        const out = op(a, b);
        assert.deepEqual(out.shape, ref.shape, label);
        assertClose(await out.toArray(), ref.data, { ...FWD, label });
        out.backward(tensor(r, out.shape));
        const fa = (x: Float64Array) =>
          dot(binaryRef({ data: x, shape: sa }, { data: bd, shape: sb }, f).data, r);
        const fb = (y: Float64Array) =>
          dot(binaryRef({ data: ad, shape: sa }, { data: y, shape: sb }, f).data, r);
        assert.deepEqual(a.grad!.shape, sa);
        assert.deepEqual(b.grad!.shape, sb);
        assertClose(await a.grad!.toArray(), numericGrad(fa, ad), { ...BWD, label: `${label} da` });
        assertClose(await b.grad!.toArray(), numericGrad(fb, bd), { ...BWD, label: `${label} db` });
        for (const t of [a, b, out]) t.dispose();
      }
    }
  },
});

test({
  name: "elementwise: broadcast errors name the op and shapes; dtype mismatch",
  fn: async () => {
    await setup();
    const a = tensor(new Float32Array(6), [2, 3]);
    const b = tensor(new Float32Array(4), [4]);
    assert.throws(
      () => add(a, b),
      (e: Error) => e instanceof ShapeError && /add.*\[2, 3\].*\[4\]/.test(e.message),
    );
    const i = tensor([1, 2, 3], [3], { dtype: "i32" });
    assert.throws(() => mul(a, i), ShapeError);
    assert.throws(() => exp(i), ShapeError);
    // Integer tensors add with matching dtypes.
    const j = add(i, tensor([10, 20, 30], [3], { dtype: "i32" }));
    assert.deepEqual([...await j.toArray()], [11, 22, 33]);
  },
});

interface UnaryCase {
  name: string;
  op: (x: ReturnType<typeof tensor>) => ReturnType<typeof tensor>;
  f: (x: number) => number;
  lo: number;
  hi: number;
}

const UNARY: UnaryCase[] = [
  { name: "neg", op: neg, f: (x) => -x, lo: -1, hi: 1 },
  { name: "relu", op: relu, f: (x) => Math.max(x, 0), lo: -1, hi: 1 },
  { name: "clampMin", op: (x) => clampMin(x, 0.25), f: (x) => Math.max(x, 0.25), lo: -1, hi: 1 },
  { name: "exp", op: exp, f: Math.exp, lo: -2, hi: 2 },
  { name: "log", op: log, f: Math.log, lo: 0.3, hi: 3 },
  { name: "sqrt", op: sqrt, f: Math.sqrt, lo: 0.3, hi: 3 },
  { name: "square", op: square, f: (x) => x * x, lo: -2, hi: 2 },
  { name: "addScalar", op: (x) => addScalar(x, 1.5), f: (x) => x + 1.5, lo: -1, hi: 1 },
  { name: "mulScalar", op: (x) => mulScalar(x, -2.5), f: (x) => -2.5 * x, lo: -1, hi: 1 },
  { name: "pow 3", op: (x) => powScalar(x, 3), f: (x) => x ** 3, lo: -2, hi: 2 },
  { name: "pow -2", op: (x) => powScalar(x, -2), f: (x) => x ** -2, lo: 0.5, hi: 2 },
  { name: "pow 4 negative x", op: (x) => powScalar(x, 4), f: (x) => x ** 4, lo: -2, hi: -0.5 },
  { name: "pow 5 negative x", op: (x) => powScalar(x, 5), f: (x) => x ** 5, lo: -1.5, hi: -0.5 },
  { name: "pow 2.5", op: (x) => powScalar(x, 2.5), f: (x) => x ** 2.5, lo: 0.3, hi: 2 },
  { name: "pow 0", op: (x) => powScalar(x, 0), f: () => 1, lo: -1, hi: 1 },
];

test({
  name: "elementwise: unary ops forward and backward vs float64 (shape [3, 5, 7])",
  fn: async () => {
    await setup();
    const shape = [3, 5, 7];
    let seed = 100;
    for (const c of UNARY) {
      const xd = randomArray(105, seed++, c.lo, c.hi);
      // Keep relu/clampMin inputs away from their kinks so finite differences are valid.
      for (let k = 0; k < xd.length; k++) {
        if (Math.abs(xd[k]) < 1e-3 || Math.abs(xd[k] - 0.25) < 1e-3) xd[k] = Math.fround(xd[k] + 0.01);
      }
      const r = randomArray(105, seed++);
      const x = tensor(xd, shape, { requiresGrad: true });
      const y = c.op(x);
      const ref = xd.map(c.f);
      // Transcendentals (exp/log/sqrt/pow) are a few ulp in WGSL: rtol 2e-6 at most; allow 1e-5.
      assertClose(await y.toArray(), ref, { ...FWD, label: c.name });
      y.backward(tensor(r, shape));
      const num = numericGrad((v) => dot(v.map(c.f), r), xd);
      assertClose(await x.grad!.toArray(), num, { ...BWD, label: `${c.name} grad` });
      x.dispose();
      y.dispose();
    }
  },
});

test({
  name: "elementwise: large broadcast over a 2-D grid (> 65535 workgroups) and tidy frees intermediates",
  fn: async () => {
    const g = await setup();
    const n = 17_000_001; // 66407 workgroups of 256: the 2-D grid path
    const a = tensor(new Float32Array(n).fill(1), [n]);
    const before = g.memory().liveBuffers;
    const out = tidy(() => addScalar(mulScalar(a, 3), 0.5));
    assert.equal(g.memory().liveBuffers, before + 1);
    const v = await out.toArray();
    let bad = 0;
    for (let i = 0; i < n; i++) if (v[i] !== 3.5) bad++;
    assert.equal(bad, 0);
    out.dispose();
    a.dispose();
  },
});
