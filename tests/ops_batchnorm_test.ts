import assert from "node:assert/strict";
import { assertClose, dot, numericGrad, randomArray, setup } from "./util.ts";
import { test } from "./harness.ts";
import { ShapeError, tensor } from "../engine/tensor.ts";
import { noGrad } from "../engine/autograd.ts";
import { batchNorm2d, batchNormRelu2d } from "../engine/ops/batchnorm.ts";
import { batchNormTrainBackwardRef, batchNormTrainRef, normalizeRef } from "./reference/batchnorm_ref.ts";

// Forward vs float64: rtol 1e-4, atol 1e-5 (normalised values are O(1); f32 statistics).
// Running statistics: rtol 1e-5, atol 1e-6. Backward vs float64 finite differences of the float64
// reference (through the batch statistics) projected on random r: rtol 1e-3, atol 1e-4 (dx is a
// difference of O(1) terms computed in f32).
const FWD = { rtol: 1e-4, atol: 1e-5 };
const RUN = { rtol: 1e-5, atol: 1e-6 };
const BWD = { rtol: 1e-3, atol: 1e-4 };

function params(c: number, seed: number) {
  return {
    gamma: randomArray(c, seed, 0.5, 1.5),
    beta: randomArray(c, seed + 1, -0.5, 0.5),
    rm: randomArray(c, seed + 2, -0.2, 0.2),
    rv: randomArray(c, seed + 3, 0.5, 2),
  };
}

for (const relu of [false, true]) {
  const op = relu ? batchNormRelu2d : batchNorm2d;
  const name = relu ? "batchNormRelu2d" : "batchNorm2d";
  test({
    name: `${name}: training forward, running updates, backward vs finite differences (N=3 C=5 H=7 W=6)`,
    fn: async () => {
      await setup();
      const [n, c, h, w] = [3, 5, 7, 6];
      const s = h * w;
      const xd = randomArray(n * c * s, 1, -2, 3);
      const p = params(c, 10);
      const momentum = 0.3;
      const x = tensor(xd, [n, c, h, w], { requiresGrad: true });
      const gamma = tensor(p.gamma, [c], { requiresGrad: true });
      const beta = tensor(p.beta, [c], { requiresGrad: true });
      const rm = tensor(p.rm, [c]);
      const rv = tensor(p.rv, [c]);
      const y = op(x, { gamma, beta, runningMean: rm, runningVar: rv }, { training: true, momentum });
      const ref = batchNormTrainRef(xd, n, c, s, p.gamma, p.beta, p.rm, p.rv, momentum, 1e-5, relu);
      assertClose(await y.toArray(), ref.y, { ...FWD, label: `${name} y` });
      assertClose(await rm.toArray(), ref.runningMean, { ...RUN, label: "runningMean" });
      // Unbiased: the update uses var·n/(n−1), n = N·H·W = 126.
      assertClose(await rv.toArray(), ref.runningVar, { ...RUN, label: "runningVar (unbiased)" });

      const r = randomArray(xd.length, 2);
      y.backward(tensor(r, y.shape));
      const f = (xv: Float64Array, g: ArrayLike<number>, b: ArrayLike<number>) =>
        dot(batchNormTrainRef(xv, n, c, s, g, b, p.rm, p.rv, momentum, 1e-5, relu).y, r);
      assertClose(await x.grad!.toArray(), numericGrad((v) => f(v, p.gamma, p.beta), xd), {
        ...BWD,
        label: `${name} dx`,
      });
      assertClose(await gamma.grad!.toArray(), numericGrad((v) => f(xd, v, p.beta), p.gamma), {
        ...BWD,
        label: `${name} dgamma`,
      });
      assertClose(await beta.grad!.toArray(), numericGrad((v) => f(xd, p.gamma, v), p.beta), {
        ...BWD,
        label: `${name} dbeta`,
      });
    },
  });

  test({
    name: `${name}: eval forward uses running statistics; backward vs finite differences`,
    fn: async () => {
      await setup();
      const [n, c, h, w] = [3, 5, 7, 6];
      const s = h * w;
      const xd = randomArray(n * c * s, 3, -2, 2);
      const p = params(c, 20);
      const x = tensor(xd, [n, c, h, w], { requiresGrad: true });
      const gamma = tensor(p.gamma, [c], { requiresGrad: true });
      const beta = tensor(p.beta, [c], { requiresGrad: true });
      const rm = tensor(p.rm, [c]);
      const rv = tensor(p.rv, [c]);
      const y = op(x, { gamma, beta, runningMean: rm, runningVar: rv }, { training: false });
      const ref = normalizeRef(xd, n, c, s, p.gamma, p.beta, p.rm, p.rv, 1e-5, relu);
      assertClose(await y.toArray(), ref, { ...FWD, label: `${name} eval y` });
      // Eval mode leaves the running buffers untouched.
      assertClose(await rm.toArray(), p.rm, { rtol: 0, atol: 0, label: "rm unchanged" });
      assertClose(await rv.toArray(), p.rv, { rtol: 0, atol: 0, label: "rv unchanged" });
      const r = randomArray(xd.length, 4);
      y.backward(tensor(r, y.shape));
      const f = (xv: Float64Array, g: ArrayLike<number>, b: ArrayLike<number>) =>
        dot(normalizeRef(xv, n, c, s, g, b, p.rm, p.rv, 1e-5, relu), r);
      assertClose(await x.grad!.toArray(), numericGrad((v) => f(v, p.gamma, p.beta), xd), {
        ...BWD,
        label: `${name} eval dx`,
      });
      assertClose(await gamma.grad!.toArray(), numericGrad((v) => f(xd, v, p.beta), p.gamma), {
        ...BWD,
        label: `${name} eval dgamma`,
      });
      assertClose(await beta.grad!.toArray(), numericGrad((v) => f(xd, p.gamma, v), p.beta), {
        ...BWD,
        label: `${name} eval dbeta`,
      });
    },
  });
}

test({
  name: "batchNorm2d: chunked statistics (N=40 C=3 H=W=9: 4 chunks per channel) and analytic backward",
  fn: async () => {
    await setup();
    const [n, c, h, w] = [40, 3, 9, 9];
    const s = h * w;
    // A large common offset: the per-chunk mean/M2 combination must not lose the variance.
    const xd = randomArray(n * c * s, 5, 99, 101);
    const p = params(c, 30);
    const x = tensor(xd, [n, c, h, w], { requiresGrad: true });
    const gamma = tensor(p.gamma, [c], { requiresGrad: true });
    const beta = tensor(p.beta, [c], { requiresGrad: true });
    const rm = tensor(p.rm, [c]);
    const rv = tensor(p.rv, [c]);
    const y = batchNorm2d(x, { gamma, beta, runningMean: rm, runningVar: rv }, { training: true });
    const ref = batchNormTrainRef(xd, n, c, s, p.gamma, p.beta, p.rm, p.rv);
    // Normalising values near 100 with spread 1: the f32 input itself carries ~1e-5 relative error.
    assertClose(await y.toArray(), ref.y, { rtol: 1e-4, atol: 1e-4, label: "chunked y" });
    assertClose(await rm.toArray(), ref.runningMean, { rtol: 1e-5, atol: 1e-5, label: "chunked rm" });
    assertClose(await rv.toArray(), ref.runningVar, { rtol: 1e-4, atol: 1e-5, label: "chunked rv" });
    const dy = randomArray(xd.length, 6);
    y.backward(tensor(dy, y.shape));
    const g = batchNormTrainBackwardRef(xd, dy, n, c, s, p.gamma);
    assertClose(await x.grad!.toArray(), g.dx, { rtol: 1e-3, atol: 1e-4, label: "chunked dx" });
    assertClose(await gamma.grad!.toArray(), g.dgamma, { rtol: 1e-3, atol: 1e-3, label: "chunked dgamma" });
    assertClose(await beta.grad!.toArray(), g.dbeta, { rtol: 1e-4, atol: 1e-4, label: "chunked dbeta" });
  },
});

test({
  name: "batchNorm2d: momentum compounds over steps, updates happen under noGrad, shape errors",
  fn: async () => {
    await setup();
    const [n, c, h, w] = [2, 3, 2, 3];
    const s = h * w;
    const p = params(c, 40);
    const gamma = tensor(p.gamma, [c]);
    const beta = tensor(p.beta, [c]);
    const rm = tensor(p.rm, [c]);
    const rv = tensor(p.rv, [c]);
    let erm: ArrayLike<number> = p.rm;
    let erv: ArrayLike<number> = p.rv;
    for (let step = 0; step < 3; step++) {
      const xd = randomArray(n * c * s, 50 + step, -1, 2);
      noGrad(() =>
        batchNorm2d(tensor(xd, [n, c, h, w]), { gamma, beta, runningMean: rm, runningVar: rv }, {
          training: true,
        })
      );
      const ref = batchNormTrainRef(xd, n, c, s, p.gamma, p.beta, erm, erv, 0.1);
      erm = ref.runningMean;
      erv = ref.runningVar;
    }
    assertClose(await rm.toArray(), erm, { ...RUN, label: "rm after 3 steps" });
    assertClose(await rv.toArray(), erv, { ...RUN, label: "rv after 3 steps" });
    const x = tensor(new Float32Array(n * c * s), [n, c, h, w]);
    assert.throws(
      () =>
        batchNorm2d(x, { gamma: tensor([1, 1], [2]), beta, runningMean: rm, runningVar: rv }, {
          training: true,
        }),
      (e: Error) => e instanceof ShapeError && /batchNorm2d.*gamma/.test(e.message),
    );
    assert.throws(
      () =>
        batchNorm2d(tensor([1, 2, 3], [3]), { gamma, beta, runningMean: rm, runningVar: rv }, {
          training: false,
        }),
      ShapeError,
    );
    assert.throws(
      () =>
        batchNorm2d(tensor([1, 2, 3], [1, 3, 1, 1]), { gamma, beta, runningMean: rm, runningVar: rv }, {
          training: true,
        }),
      ShapeError,
    );
  },
});
