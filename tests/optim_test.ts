/**
 * SGD (fused over a parameter arena) against a float64 reference of PyTorch's update, projections
 * and learning-rate schedules.
 */
import assert from "node:assert/strict";
import { assertClose, randomArray, setup } from "./util.ts";
import { test } from "./harness.ts";
import { ShapeError, type Tensor, tensor, writeTensor } from "../engine/tensor.ts";
import { gpu } from "../engine/gpu.ts";
import { ARENA_ALIGN, SGD, type SGDOptions } from "../engine/optim/sgd.ts";
import { projectToBall, projectToSphere } from "../engine/optim/projection.ts";
import {
  constantLr,
  constantSchedule,
  exponentialLr,
  exponentialSchedule,
  polynomialLr,
  polynomialSchedule,
} from "../engine/optim/schedule.ts";
import { normalizeToSphere } from "../engine/ops/loss.ts";

const SHAPES = [[37, 13], [5], [3, 3, 3], [1], [70]];

/** float64 PyTorch SGD for one parameter: returns the new parameter; `state.buf` is updated. */
function torchStep(
  p: Float64Array,
  grad: ArrayLike<number>,
  state: { buf: Float64Array | null },
  lr: number,
  o: Required<Omit<SGDOptions, "lr" | "project">>,
): Float64Array {
  const out = new Float64Array(p.length);
  const d = Float64Array.from(grad, (g, i) => g + o.weightDecay * p[i]);
  if (o.momentum !== 0) {
    if (!state.buf) state.buf = Float64Array.from(d);
    else {for (let i = 0; i < d.length; i++) {
        state.buf[i] = o.momentum * state.buf[i] + (1 - o.dampening) * d[i];
      }}
    for (let i = 0; i < d.length; i++) d[i] = o.nesterov ? d[i] + o.momentum * state.buf[i] : state.buf[i];
  }
  for (let i = 0; i < p.length; i++) out[i] = p[i] - lr * d[i];
  return out;
}

function makeParams(seed: number): { host: Float64Array[]; params: Tensor[] } {
  const host = SHAPES.map((s, k) => randomArray(s.reduce((a, b) => a * b, 1), seed + k));
  const params = host.map((h, k) => tensor(h, SHAPES[k], { requiresGrad: true }));
  return { host, params };
}

test({
  name: "SGD: arena packing keeps parameter values, aligns slots, zeroes gradients",
  fn: async () => {
    await setup();
    const { host, params } = makeParams(1);
    const opt = new SGD(params, { lr: 0.1, momentum: 0.9 });
    for (let k = 0; k < params.length; k++) {
      assert.deepEqual(params[k].shape, SHAPES[k]);
      assert.equal(params[k].range.offset % 256, 0, "256-byte aligned slot");
      assert.equal(params[k].range.buffer, params[0].range.buffer, "one arena");
      assertClose(await params[k].toArray(), host[k], { rtol: 0, atol: 0, label: `param ${k}` });
      assertClose(await params[k].grad!.toArray(), new Float64Array(host[k].length), {
        rtol: 0,
        atol: 0,
        label: "grad",
      });
    }
    const total = SHAPES.reduce(
      (a, s) => a + Math.ceil(s.reduce((x, y) => x * y, 1) / ARENA_ALIGN) * ARENA_ALIGN,
      0,
    );
    const flat = opt.arenaView();
    assert.equal(flat.size, total);
    flat.dispose();
    // Gradients accumulate into the slots through autograd; zeroGrad clears them.
    const [p] = params;
    const r = randomArray(37 * 13, 20);
    const before = gpu().counters.dispatches;
    normalizeToSphere(p, 2).backward(tensor(r, [37, 13]));
    normalizeToSphere(p, 2).backward(tensor(r, [37, 13]));
    assert.ok(gpu().counters.dispatches > before);
    const once = await (() => {
      const u = tensor(host[0], [37, 13], { requiresGrad: true });
      normalizeToSphere(u, 2).backward(tensor(r, [37, 13]));
      return u.grad!.toArray();
    })();
    assertClose(await p.grad!.toArray(), once.map((v) => 2 * v), {
      rtol: 1e-6,
      atol: 1e-7,
      label: "accumulated",
    });
    opt.zeroGrad();
    assertClose(await p.grad!.toArray(), new Float64Array(37 * 13), { rtol: 0, atol: 0, label: "zeroGrad" });
    // A step with zero gradients and no weight decay keeps the parameters.
    opt.step();
    assertClose(await params[2].toArray(), host[2], { rtol: 0, atol: 0, label: "zero step" });
    opt.dispose();
    assertClose(await params[1].toArray(), host[1], { rtol: 0, atol: 0, label: "after dispose" });
    assert.equal(params[1].gradSink, undefined);
  },
});

const VARIANTS: Required<Omit<SGDOptions, "lr" | "project">>[] = [
  { momentum: 0, weightDecay: 0, nesterov: false, dampening: 0 },
  { momentum: 0, weightDecay: 1e-1, nesterov: false, dampening: 0 },
  { momentum: 0.9, weightDecay: 1e-1, nesterov: false, dampening: 0 },
  { momentum: 0.9, weightDecay: 1e-2, nesterov: false, dampening: 0.3 },
  { momentum: 0.8, weightDecay: 5e-2, nesterov: true, dampening: 0 },
];

test({
  name:
    "SGD: several steps vs float64 PyTorch update (weight decay, momentum first step, dampening, Nesterov)",
  fn: async () => {
    await setup();
    for (const [v, o] of VARIANTS.entries()) {
      const { host, params } = makeParams(10 * v);
      const opt = new SGD(params, { lr: 0.5, ...o });
      const states = params.map(() => ({ buf: null as Float64Array | null }));
      let ref: Float64Array[] = host.map((h) => Float64Array.from(h));
      const dispatches = gpu().counters.dispatches;
      for (let step = 0; step < 4; step++) {
        const lr = step === 2 ? 0.5 : 0.1 * (step + 1); // step 2 uses the default lr
        const grads = SHAPES.map((_, k) => randomArray(params[k].size, 100 * v + 10 * step + k));
        opt.zeroGrad();
        params.forEach((p, k) => writeTensor(p.grad!, grads[k]));
        if (step === 2) opt.step();
        else opt.step(lr);
        ref = ref.map((p, k) => torchStep(p, grads[k], states[k], lr, o));
      }
      assert.equal(gpu().counters.dispatches - dispatches, 4, "one dispatch per step");
      for (let k = 0; k < params.length; k++) {
        assertClose(await params[k].toArray(), ref[k], {
          rtol: 1e-5,
          atol: 1e-6,
          label: `variant ${v} param ${k}`,
        });
      }
      if (o.momentum) {
        const state = await opt.stateDict();
        assert.equal(state.step, 4);
        assertClose(state.momentum![1], states[1].buf!, { rtol: 1e-5, atol: 1e-6, label: "momentum" });
      }
      opt.dispose();
    }
  },
});

test({
  name: "SGD: stateDict/loadStateDict resume is exact; option errors",
  fn: async () => {
    await setup();
    const o = { lr: 0.2, momentum: 0.9, weightDecay: 1e-2 };
    const grads = (step: number) =>
      SHAPES.map((s, k) => randomArray(s.reduce((a, b) => a * b, 1), 500 + 10 * step + k));
    const run = (opt: SGD, params: Tensor[], from: number, to: number) => {
      for (let step = from; step < to; step++) {
        opt.zeroGrad();
        grads(step).forEach((g, k) => writeTensor(params[k].grad!, g));
        opt.step(0.1 / (step + 1));
      }
    };
    const a = makeParams(7);
    const optA = new SGD(a.params, o);
    run(optA, a.params, 0, 5);
    const b = makeParams(7);
    const optB = new SGD(b.params, o);
    run(optB, b.params, 0, 2);
    const state = await optB.stateDict();
    const saved = await Promise.all(b.params.map((p) => p.toArray()));
    const c = { params: saved.map((s, k) => tensor(s, SHAPES[k], { requiresGrad: true })) };
    const optC = new SGD(c.params, o);
    optC.loadStateDict(state);
    assert.equal(optC.steps, 2);
    run(optC, c.params, 2, 5);
    for (let k = 0; k < SHAPES.length; k++) {
      assertClose(await c.params[k].toArray(), await a.params[k].toArray(), {
        rtol: 0,
        atol: 0,
        label: `resume ${k}`,
      });
    }
    assert.throws(() => new SGD([], { lr: 1 }), ShapeError);
    assert.throws(() => new SGD([a.params[0], a.params[0]], { lr: 1 }), ShapeError);
    assert.throws(() => new SGD([tensor([1])], { lr: 1, nesterov: true }), ShapeError);
    assert.throws(() => optA.loadStateDict({ step: 1, momentum: null }), ShapeError);
    optA.dispose();
    assert.throws(() => optA.step(), ShapeError);
    optB.dispose();
    optC.dispose();
  },
});

function projectRef(x: Float64Array, d: number, radius: number, kind: "sphere" | "ball"): Float64Array {
  const out = Float64Array.from(x);
  for (let r = 0; r < x.length / d; r++) {
    let s = 0;
    for (let t = 0; t < d; t++) s += x[r * d + t] ** 2;
    const n = Math.sqrt(s);
    const scale = kind === "sphere" ? (n > 0 ? radius / n : 0) : n > radius ? radius / n : 1;
    for (let t = 0; t < d; t++) out[r * d + t] = x[r * d + t] * scale;
  }
  return out;
}

test({
  name: "projections: sphere and ball in place (rows 67, d 3), zero rows, and as an SGD option",
  fn: async () => {
    await setup();
    const rows = 67, d = 3, radius = 1.5;
    const x0 = randomArray(rows * d, 30, -2, 2);
    x0.fill(0, 0, d); // a zero row
    for (const kind of ["sphere", "ball"] as const) {
      const x = tensor(x0, [rows, d]);
      (kind === "sphere" ? projectToSphere : projectToBall)(x, radius);
      assertClose(await x.toArray(), projectRef(x0, d, radius, kind), {
        rtol: 1e-6,
        atol: 1e-7,
        label: kind,
      });
    }
    assert.throws(() => projectToSphere(tensor([1, 2]), 0), ShapeError);
    // Projected SGD (the Fig. 6 toy): points on S¹ stay on S¹, the other parameter is untouched.
    const pts0 = projectRef(randomArray(12 * 2, 31), 2, 1, "sphere");
    const w0 = randomArray(5, 32, -3, 3);
    const pts = tensor(pts0, [12, 2], { requiresGrad: true });
    const w = tensor(w0, [5], { requiresGrad: true });
    const opt = new SGD([pts, w], { lr: 0.3, project: { kind: "sphere", radius: 1, params: [pts] } });
    const g = randomArray(24, 33);
    writeTensor(pts.grad!, g);
    writeTensor(w.grad!, new Float64Array(5).fill(1));
    opt.step();
    const expected = projectRef(pts0.map((p, i) => p - 0.3 * g[i]), 2, 1, "sphere");
    assertClose(await pts.toArray(), expected, { rtol: 1e-5, atol: 1e-6, label: "projected SGD" });
    assertClose(await w.toArray(), w0.map((v) => v - 0.3), { rtol: 1e-6, atol: 1e-6, label: "unprojected" });
    opt.dispose();
    assert.throws(
      () => new SGD([w], { lr: 1, project: { kind: "ball", radius: 1, params: [pts] } }),
      ShapeError,
    );
  },
});

test("schedules: polynomial, exponential, constant", () => {
  assert.equal(polynomialLr(0.1, 0, 100, 5), 0.1);
  assert.ok(Math.abs(polynomialLr(0.1, 50, 100, 5) - 0.1 / 32) < 1e-15);
  assert.equal(polynomialLr(0.1, 100, 100, 5), 0);
  assert.equal(polynomialLr(0.1, 150, 100, 5), 0);
  assert.ok(Math.abs(exponentialLr(2, 3, 0.5) - 0.25) < 1e-15);
  assert.equal(constantLr(0.3, 7), 0.3);
  assert.equal(polynomialSchedule(0.1, 100, 5)(50), polynomialLr(0.1, 50, 100, 5));
  assert.equal(exponentialSchedule(2, 0.5)(3), 0.25);
  assert.equal(constantSchedule(0.3)(99), 0.3);
  assert.throws(() => polynomialLr(0.1, 0, 0, 5), RangeError);
});

test({
  name: "gradients written straight into zeroed optimiser slots equal the accumulated ones, in any order",
  async fn() {
    await setup();
    const { linear } = await import("../engine/ops/matmul.ts");
    const { mul } = await import("../engine/ops/elementwise.ts");
    const { sum } = await import("../engine/ops/reduce.ts");
    const { gradTarget } = await import("../engine/autograd.ts");
    const wData = randomArray(16, 41);
    const xData = randomArray(12, 42);
    const bData = randomArray(4, 43);
    // loss = Σ linear(linear(x, w) ⊙ w-shaped… ): w feeds three rules — linear twice (which write into the slot
    // when they may) and an elementwise product (which never does), so every order of slot / non-slot meets.
    const loss = (w: Tensor, b: Tensor, x: Tensor) =>
      sum(mul(linear(linear(x, w, b), w), linear(sum(mul(w, w), 0, true), w)));
    const run = async (useSgd: boolean, backwards: number) => {
      const w = tensor(wData, [4, 4], { requiresGrad: true });
      const b = tensor(bData, [4], { requiresGrad: true });
      const x = tensor(xData, [3, 4]);
      const sgd = useSgd ? new SGD([w, b], { lr: 0.1 }) : null;
      sgd?.zeroGrad();
      for (let i = 0; i < backwards; i++) {
        const l = loss(w, b, x);
        l.backward();
        l.dispose();
      }
      const grads = [await w.grad!.toArray(), await b.grad!.toArray()];
      const flags = [w.gradSink?.fresh ?? false, b.gradSink?.fresh ?? false];
      sgd?.dispose();
      [w, b, x].forEach((t) => t.dispose());
      return { grads, flags };
    };
    const plain = await run(false, 1);
    const slots = await run(true, 1);
    const twice = await run(true, 2); // the second backward adds onto the slots (no zeroGrad between)
    for (let i = 0; i < 2; i++) {
      assertClose(slots.grads[i], plain.grads[i], { rtol: 1e-6, atol: 1e-6, label: `grad ${i}` });
      assertClose(twice.grads[i], plain.grads[i].map((v) => 2 * v), {
        rtol: 1e-6,
        atol: 1e-6,
        label: `2× ${i}`,
      });
    }
    assert.deepEqual(slots.flags, [false, false], "the slots were taken");
    // gradTarget hands out a slot once per zeroGrad, and only to leaves that require grad.
    const p = tensor([1, 2], [2], { requiresGrad: true });
    const sgd = new SGD([p], { lr: 0.1 });
    sgd.zeroGrad();
    assert.equal(gradTarget(p), p.gradSink?.grad);
    const fresh = gradTarget(p);
    assert.notEqual(fresh, p.gradSink?.grad);
    fresh.dispose();
    sgd.dispose();
    p.dispose();
  },
});
