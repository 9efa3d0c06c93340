/**
 * Models: parameter count and PyTorch names of ResNet-18, GPU forward vs the float64 reference
 * (tests/reference/resnet_ref.ts) in both variants and both BatchNorm modes, state dicts, the
 * classifiers and point configurations. Outputs are poisoned (setup()), so unwritten elements fail.
 */
import assert from "node:assert/strict";
import { assertClose, dot, randomArray, rng, setup } from "./util.ts";
import { test } from "./harness.ts";
import { gpu } from "../engine/gpu.ts";
import { ShapeError, tensor } from "../engine/tensor.ts";
import { TensorScope } from "../engine/scope.ts";
import { mul } from "../engine/ops/elementwise.ts";
import { sum } from "../engine/ops/reduce.ts";
import {
  BatchNorm2d,
  Conv2d,
  LinearClassifier,
  PointConfiguration,
  ResNet18,
  type ResNetVariant,
  SimplexClassifier,
  type StateDict,
  StateDictError,
} from "../models/mod.ts";
import { resnetRef } from "./reference/resnet_ref.ts";

/** The parameter names and shapes of kuangliu's CIFAR ResNet-18 (post-activation), PyTorch order. */
function expectedStandardParameters(widths: number[], inChannels = 3): [string, number[]][] {
  const out: [string, number[]][] = [];
  const bn = (p: string, c: number) => out.push([`${p}.weight`, [c]], [`${p}.bias`, [c]]);
  out.push(["conv1.weight", [widths[0], inChannels, 3, 3]]);
  bn("bn1", widths[0]);
  let inPlanes = widths[0];
  for (let s = 0; s < 4; s++) {
    for (let b = 0; b < 2; b++) {
      const p = `layer${s + 1}.${b}`;
      const planes = widths[s];
      const stride = b === 0 && s > 0 ? 2 : 1;
      out.push([`${p}.conv1.weight`, [planes, inPlanes, 3, 3]]);
      bn(`${p}.bn1`, planes);
      out.push([`${p}.conv2.weight`, [planes, planes, 3, 3]]);
      bn(`${p}.bn2`, planes);
      if (stride !== 1 || inPlanes !== planes) {
        out.push([`${p}.shortcut.0.weight`, [planes, inPlanes, 1, 1]]);
        bn(`${p}.shortcut.1`, planes);
      }
      inPlanes = planes;
    }
  }
  return out;
}

test({
  name: "ResNet18 width 1: 11,168,832 parameters with kuangliu/PyTorch names and shapes; dispose frees all",
  fn: async () => {
    await setup();
    await gpu().sync();
    const before = gpu().memory().liveBuffers;
    const model = new ResNet18({ seed: 0 });
    assert.equal(model.numParameters(), 11_168_832);
    assert.equal(model.featureDim, 512);
    const named = model.namedParameters();
    const expected = expectedStandardParameters([64, 128, 256, 512]);
    assert.deepEqual(named.map(([n]) => n), expected.map(([n]) => n));
    for (let i = 0; i < named.length; i++) {
      const [name, t] = named[i];
      assert.deepEqual([...t.shape], expected[i][1], name);
      assert.equal(t.name, name, "tensor.name is the dotted key");
      assert.equal(t.requiresGrad, true, name);
    }
    // Buffers: running mean/var of every BN, named like PyTorch (no num_batches_tracked).
    const buffers = model.namedBuffers().map(([n]) => n);
    const bnNames = expected.filter(([n]) => n.endsWith(".bias")).map(([n]) => n.slice(0, -5));
    assert.deepEqual(buffers, bnNames.flatMap((p) => [`${p}.running_mean`, `${p}.running_var`]));
    assert.ok(buffers.includes("bn1.running_mean") && buffers.includes("layer2.0.shortcut.1.running_var"));
    assert.equal(model.namedBuffers().every(([, t]) => !t.requiresGrad), true);
    model.dispose();
    model.dispose(); // safe twice
    assert.equal(gpu().memory().liveBuffers, before);
  },
});

test({
  name: "ResNet18 preact: names (bn1/conv1/bn2/conv2, conv-only shortcut), no stem BN, no final BN",
  fn: async () => {
    await setup();
    const model = new ResNet18({ variant: "preact", width: 1 / 8, seed: 1 });
    const names = model.namedParameters().map(([n]) => n);
    assert.deepEqual(names.slice(0, 9), [
      "conv1.weight",
      "layer1.0.bn1.weight",
      "layer1.0.bn1.bias",
      "layer1.0.conv1.weight",
      "layer1.0.bn2.weight",
      "layer1.0.bn2.bias",
      "layer1.0.conv2.weight",
      "layer1.1.bn1.weight",
      "layer1.1.bn1.bias",
    ]);
    assert.ok(names.includes("layer2.0.shortcut.0.weight"));
    assert.ok(!names.some((n) => n.startsWith("layer2.0.shortcut.1")), "preact shortcut has no BN");
    assert.ok(!names.includes("bn1.weight"));
    assert.deepEqual(names.slice(-1), ["layer4.1.conv2.weight"], "the last block's sum goes to the pool");
    assert.equal(model.featureDim, 64);
    model.dispose();
  },
});

test({
  name: "init: PyTorch defaults (conv/linear U(±1/√fan_in), BN γ=1 β=0, running 0/1), deterministic by seed",
  fn: async () => {
    await setup();
    const a = new ResNet18({ width: 1 / 8, seed: 7 });
    const b = new ResNet18({ width: 1 / 8, seed: 7 });
    const c = new ResNet18({ width: 1 / 8, seed: 8 });
    const [da, db, dc] = [await a.stateDict(), await b.stateDict(), await c.stateDict()];
    for (const [key, e] of Object.entries(da)) {
      assert.deepEqual(e.data, db[key].data, `same seed, same ${key}`);
      if (key.endsWith("conv1.weight") || key.endsWith("conv2.weight") || key.endsWith("shortcut.0.weight")) {
        const fanIn = e.shape[1] * e.shape[2] * e.shape[3];
        const bound = 1 / Math.sqrt(fanIn);
        const maxAbs = e.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        assert.ok(maxAbs <= bound && maxAbs > 0.9 * bound, `${key}: max |w| ${maxAbs}, bound ${bound}`);
        const mean = e.data.reduce((s, v) => s + v, 0) / e.data.length;
        assert.ok(Math.abs(mean) < 0.2 * bound, `${key}: mean ${mean}`);
        assert.notDeepEqual(e.data, dc[key].data, `different seed, different ${key}`);
      } else {
        const value = key.endsWith("weight") || key.endsWith("running_var") ? 1 : 0;
        assert.ok(e.data.every((v) => v === value), `${key} = ${value}`);
      }
    }
    const lin = new LinearClassifier(20, 5, { bias: true, seed: 3 });
    const ld = await lin.stateDict();
    assert.deepEqual(Object.keys(ld), ["weight", "bias"]);
    for (const k of ["weight", "bias"]) {
      assert.ok(ld[k].data.every((v) => Math.abs(v) <= 1 / Math.sqrt(20)), k);
    }
    for (const m of [a, b, c, lin]) m.dispose();
  },
});

test({
  name: "train()/eval() propagate to every descendant",
  fn: async () => {
    await setup();
    const model = new ResNet18({ width: 1 / 16, seed: 2 });
    const bns: BatchNorm2d[] = [];
    const walk = (m: { namedChildren(): [string, unknown][] }) => {
      for (const [, c] of m.namedChildren()) {
        if (c instanceof BatchNorm2d) bns.push(c);
        walk(c as { namedChildren(): [string, unknown][] });
      }
    };
    walk(model);
    assert.equal(bns.length, 1 + 4 * 4 + 3);
    assert.ok(model.training && bns.every((b) => b.training));
    model.eval();
    assert.ok(!model.training && bns.every((b) => !b.training));
    model.train();
    assert.ok(bns.every((b) => b.training));
    model.dispose();
  },
});

/** Random BN affine parameters and running statistics, so eval mode is not an identity. */
function perturbBatchNorm(dict: StateDict, seed: number): StateDict {
  const r = rng(seed);
  const u = (lo: number, hi: number) => Math.fround(lo + (hi - lo) * r());
  const out: StateDict = {};
  for (const [key, e] of Object.entries(dict)) {
    let data = e.data;
    if (e.shape.length === 1) {
      if (key.endsWith(".weight")) data = data.map(() => u(0.5, 1.5));
      else if (key.endsWith(".bias")) data = data.map(() => u(-0.3, 0.3));
      else if (key.endsWith(".running_mean")) data = data.map(() => u(-0.2, 0.2));
      else if (key.endsWith(".running_var")) data = data.map(() => u(0.5, 1.5));
    }
    out[key] = { shape: e.shape, data };
  }
  return out;
}

// Tolerances of the forward check: float32 accumulation through 17 convolutions (fan-in up to
// 9·64 = 576 at width 1/8) and 20 BatchNorms, whose batch statistics at the last stage come from
// only N·4·4 = 48 values per channel, amplify rounding; rtol 1e-3, atol 1e-4 (features are O(0.1–1)).
const FORWARD_TOL = { rtol: 1e-3, atol: 1e-4 };

for (const variant of ["standard", "preact"] as ResNetVariant[]) {
  test({
    name: `ResNet18 ${variant} width 1/8: GPU forward vs float64 reference (N 3, 3×32×32), train and eval BN`,
    fn: async () => {
      await setup();
      const n = 3, size = 32;
      const model = new ResNet18({ variant, width: 1 / 8, seed: 11 });
      const dict = perturbBatchNorm(await model.stateDict(), 12);
      model.loadStateDict(dict);
      const x0 = randomArray(n * 3 * size * size, 13, -2, 2);
      const input = { data: x0, shape: [n, 3, size, size] as [number, number, number, number] };
      const scope = new TensorScope();
      try {
        const x = tensor(x0, [n, 3, size, size]);
        for (const training of [true, false]) {
          model.train(training);
          const features = model.forward(x);
          assert.deepEqual([...features.shape], [n, 64]);
          const got = await features.toArray();
          const ref = resnetRef(dict, input, { variant, training });
          assertClose(got, ref.features, {
            ...FORWARD_TOL,
            label: `${variant} training=${training} features`,
          });
          if (variant === "standard") {
            assert.ok(got.every((v) => v >= 0), "post-activation features are non-negative");
          } else {
            assert.ok(got.some((v) => v < -1e-3), "pre-activation features take negative values");
          }
          // Running statistics: updated (unbiased variance, momentum 0.1) in training mode, untouched in eval.
          const after = await model.stateDict();
          for (const [key, expected] of Object.entries(ref.running)) {
            if (training) {
              assertClose(after[key].data, expected, {
                rtol: 1e-3,
                atol: 1e-4,
                label: `${key} after train forward`,
              });
            } else {
              assert.deepEqual(
                after[key].data,
                Float32Array.from(expected.map(Math.fround)),
                `${key} unchanged`,
              );
            }
          }
          model.loadStateDict(dict); // reset running stats for the next mode
        }
      } finally {
        scope.dispose();
        model.dispose();
      }
    },
  });
}

test({
  name: "ResNet18: shape errors name the op and the shapes; unknown variant and bad width rejected",
  fn: async () => {
    await setup();
    const model = new ResNet18({ width: 1 / 16 });
    const x = tensor(new Float32Array(2 * 1 * 8 * 8), [2, 1, 8, 8]);
    assert.throws(
      () => model.forward(x),
      (e: Error) => e instanceof ShapeError && /\[2, 1, 8, 8\]/.test(e.message),
    );
    x.dispose();
    model.dispose();
    assert.throws(() => new ResNet18({ variant: "wide" as ResNetVariant }), RangeError);
    assert.throws(() => new ResNet18({ width: 0 }), RangeError);
  },
});

test({
  name: "stateDict/loadStateDict: round trip; missing, unexpected keys and shape mismatches are named",
  fn: async () => {
    await setup();
    const a = new ResNet18({ width: 1 / 16, seed: 1 });
    const b = new ResNet18({ width: 1 / 16, seed: 2 });
    const da = await a.stateDict();
    assert.equal(Object.keys(da).length, a.namedParameters().length + a.namedBuffers().length);
    assert.deepEqual(Object.keys(da).slice(0, 5), [
      "conv1.weight",
      "bn1.weight",
      "bn1.bias",
      "bn1.running_mean",
      "bn1.running_var",
    ]);
    assert.notDeepEqual((await b.stateDict())["conv1.weight"].data, da["conv1.weight"].data);
    b.loadStateDict(da);
    const db = await b.stateDict();
    for (const key of Object.keys(da)) assert.deepEqual(db[key], da[key], key);

    const missing = { ...da };
    delete missing["layer3.1.bn2.running_var"];
    assert.throws(
      () => b.loadStateDict(missing),
      (e: Error) =>
        e instanceof StateDictError && /missing keys: layer3\.1\.bn2\.running_var/.test(e.message),
    );
    const extra = { ...da, "fc.weight": { shape: [2, 2], data: new Float32Array(4) } };
    assert.throws(() => b.loadStateDict(extra), /unexpected keys: fc\.weight/);
    const wrong = { ...da, "conv1.weight": { shape: [4, 3, 5, 5], data: new Float32Array(300) } };
    assert.throws(() => b.loadStateDict(wrong), /conv1\.weight: expected \[4, 3, 3, 3\], got \[4, 3, 5, 5\]/);
    const short = { ...da, "bn1.bias": { shape: [4], data: new Float32Array(3) } };
    assert.throws(() => b.loadStateDict(short), /bn1\.bias: shape \[4\] needs 4 values, got 3/);
    // A failed load writes nothing; strict: false ignores missing/unexpected keys but not shapes.
    const db2 = await b.stateDict();
    for (const key of Object.keys(da)) assert.deepEqual(db2[key], da[key], key);
    const partial = {
      "conv1.weight": da["conv1.weight"],
      "fc.bias": { shape: [1], data: new Float32Array(1) },
    };
    b.loadStateDict(partial, { strict: false });
    assert.throws(() => b.loadStateDict(wrong, { strict: false }), StateDictError);
    a.dispose();
    b.dispose();
  },
});

test({
  name: "SimplexClassifier: fixed unit-norm regular simplex weights; logits and feature gradient vs float64",
  fn: async () => {
    await setup();
    const h = 13, K = 7, n = 9;
    const clf = new SimplexClassifier(h, K);
    assert.equal(clf.numParameters(), 0);
    assert.equal(clf.parameters().length, 0);
    assert.equal(clf.weight.requiresGrad, false);
    const W = (await clf.stateDict()).weight.data;
    const row = (i: number) => W.subarray(i * h, (i + 1) * h);
    for (let i = 0; i < K; i++) {
      assertClose([dot(row(i), row(i))], [1], { rtol: 1e-6, atol: 1e-6, label: `‖w_${i}‖²` });
      for (let j = i + 1; j < K; j++) {
        assertClose([dot(row(i), row(j))], [-1 / (K - 1)], {
          rtol: 1e-6,
          atol: 1e-6,
          label: `⟨w_${i}, w_${j}⟩`,
        });
      }
    }
    for (let d = 0; d < h; d++) {
      let s = 0;
      for (let i = 0; i < K; i++) s += W[i * h + d];
      assert.ok(Math.abs(s) < 1e-6, `Σ w_y = 0 (coordinate ${d}: ${s})`);
    }
    for (let i = 0; i < K; i++) {
      // Orthogonal to the all-ones vector: a common component of non-negative features favours no class.
      assertClose([row(i).reduce((p, v) => p + v, 0)], [0], { atol: 1e-6, label: `⟨w_${i}, 1⟩` });
    }
    const x0 = randomArray(n * h, 21);
    const r0 = randomArray(n * K, 22);
    const scope = new TensorScope();
    try {
      const x = tensor(x0, [n, h], { requiresGrad: true });
      const logits = clf.forward(x);
      const expected = new Float64Array(n * K);
      for (let a = 0; a < n; a++) {
        for (let k = 0; k < K; k++) expected[a * K + k] = dot(x0.subarray(a * h, (a + 1) * h), row(k));
      }
      assertClose(await logits.toArray(), expected, { rtol: 1e-5, atol: 1e-6, label: "logits" });
      sum(mul(logits, tensor(r0, [n, K]))).backward();
      const dx = new Float64Array(n * h); // d/dx Σ r ⊙ (x Wᵀ) = r W
      for (let a = 0; a < n; a++) {
        for (let d = 0; d < h; d++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += r0[a * K + k] * W[k * h + d];
          dx[a * h + d] = s;
        }
      }
      assertClose(await x.grad!.toArray(), dx, { rtol: 1e-5, atol: 1e-6, label: "dx" });
      assert.equal(clf.weight.grad, undefined, "no gradient for the fixed weights");
    } finally {
      scope.dispose();
      clf.dispose();
    }
    assert.throws(() => new SimplexClassifier(3, 5), RangeError);
  },
});

test({
  name: "LinearClassifier: logits vs float64 (bias-free default and with bias), shape errors",
  fn: async () => {
    await setup();
    const h = 19, K = 5, n = 7;
    const x0 = randomArray(n * h, 31);
    const scope = new TensorScope();
    try {
      for (const bias of [false, true]) {
        const clf = new LinearClassifier(h, K, { bias, seed: 4 });
        assert.equal(clf.numParameters(), K * h + (bias ? K : 0));
        const d = await clf.stateDict();
        const W = d.weight.data;
        const expected = new Float64Array(n * K);
        for (let a = 0; a < n; a++) {
          for (let k = 0; k < K; k++) {
            expected[a * K + k] = dot(x0.subarray(a * h, (a + 1) * h), W.subarray(k * h, (k + 1) * h)) +
              (bias ? d.bias.data[k] : 0);
          }
        }
        const logits = clf.forward(tensor(x0, [n, h]));
        assertClose(await logits.toArray(), expected, {
          rtol: 1e-5,
          atol: 1e-6,
          label: `logits bias=${bias}`,
        });
        assert.throws(() => clf.forward(tensor(x0.subarray(0, n * (h - 1)), [n, h - 1])), ShapeError);
        clf.dispose();
      }
    } finally {
      scope.dispose();
    }
  },
});

test({
  name: "PointConfiguration: sphere/disc/normal inits, deterministic, forward is the trainable parameter",
  fn: async () => {
    await setup();
    const n = 50, dim = 3, radius = 2;
    const sphere = new PointConfiguration({ n, dim, init: "sphere", radius, seed: 5 });
    const again = new PointConfiguration({ n, dim, init: "sphere", radius, seed: 5 });
    const disc = new PointConfiguration({ n, dim, init: "disc", radius, seed: 5 });
    const normal = new PointConfiguration({ n: 2000, dim: 2, init: "normal", radius, seed: 6 });
    assert.equal(sphere.forward(), sphere.points);
    assert.ok(sphere.points.requiresGrad);
    assert.deepEqual(sphere.namedParameters().map(([k]) => k), ["points"]);
    const s = await sphere.points.toArray();
    assert.deepEqual(s, await again.points.toArray());
    const d = await disc.points.toArray();
    let inner = 0;
    for (let i = 0; i < n; i++) {
      const ns = Math.hypot(...s.subarray(i * dim, (i + 1) * dim));
      const nd = Math.hypot(...d.subarray(i * dim, (i + 1) * dim));
      assertClose([ns], [radius], { rtol: 1e-6, atol: 0, label: `sphere norm ${i}` });
      assert.ok(nd <= radius * (1 + 1e-6), `disc norm ${nd}`);
      if (nd < radius * 0.8) inner++;
    }
    assert.ok(inner > 5, "disc points fill the ball");
    const z = Float32Array.from(await normal.points.toArray());
    const std = Math.sqrt(z.reduce((a, v) => a + v * v, 0) / z.length);
    assert.ok(Math.abs(std - radius) < 0.1 * radius, `normal std ${std}`);
    for (const m of [sphere, again, disc, normal]) m.dispose();
    assert.throws(() => new PointConfiguration({ n: 0, dim: 2 }), RangeError);
  },
});

test({
  name: "Conv2d and BatchNorm2d modules: weight shapes and names",
  fn: async () => {
    await setup();
    const conv = new Conv2d(3, 5, 3, { stride: 2, padding: 1, rng: 1 });
    const bn = new BatchNorm2d(5);
    assert.deepEqual([...conv.weight.shape], [5, 3, 3, 3]);
    assert.deepEqual(conv.namedParameters().map(([k]) => k), ["weight"]);
    assert.deepEqual(bn.namedTensors().map(([k]) => k), ["weight", "bias", "running_mean", "running_var"]);
    assert.equal(bn.numParameters(), 10);
    conv.dispose();
    bn.dispose();
  },
});

for (const variant of ["standard", "preact"] as ResNetVariant[]) {
  test({
    name:
      `ResNet18 ${variant} width 1/8: end-to-end loss gradient vs central differences along random directions`,
    fn: async () => {
      // Every backward path of a training step composed (conv forward / grad input / grad weight on all
      // layer shapes, BN in training mode, addRelu, pooling, linear, cross-entropy), written into the
      // optimiser's slots and with releaseIntermediates, as the trainer runs it: the directional derivative
      // g·v must match (L(θ + tv) − L(θ − tv)) / 2t for random unit directions v over all parameters.
      await setup();
      const { crossEntropy } = await import("../engine/ops/loss.ts");
      const { SGD } = await import("../engine/optim/sgd.ts");
      const { tidy } = await import("../engine/scope.ts");
      const { writeTensor } = await import("../engine/tensor.ts");
      const model = new ResNet18({ variant, width: 1 / 8, seed: 21 });
      const head = new LinearClassifier(model.featureDim, 10, { seed: 22 });
      const params = [...model.parameters(), ...head.parameters()];
      const sgd = new SGD(params, { lr: 0 });
      const x = tensor(randomArray(4 * 3 * 32 * 32, 23, -2, 2), [4, 3, 32, 32]);
      const labels = tensor([3, 1, 4, 1], [4], { dtype: "i32" });
      const theta = await Promise.all(params.map((p) => p.toArray().then((a) => Float64Array.from(a))));
      const lossAt = (shift: Float64Array[], t: number) =>
        tidy(() => {
          params.forEach((p, i) => writeTensor(p, theta[i].map((v, j) => v + t * shift[i][j])));
          return crossEntropy(head.forward(model.forward(x)), labels);
        });
      sgd.zeroGrad();
      tidy(() => {
        const loss = crossEntropy(head.forward(model.forward(x)), labels);
        loss.backward(undefined, { releaseIntermediates: true });
      });
      const grads = await Promise.all(params.map((p) => p.grad!.toArray()));
      const random = rng(24);
      const norm = (vs: ArrayLike<number>[]) => Math.sqrt(vs.reduce((s, a) => s + dot(a, a), 0));
      const gNorm = norm(grads);
      for (let d = 0; d < 3; d++) {
        // Half along the gradient, half random: a random direction alone is nearly orthogonal to g (175k
        // parameters), and then ReLU kinks within ±t dominate the difference quotient.
        const r = theta.map((a) => a.map(() => random() - 0.5));
        const rNorm = norm(r);
        const v = r.map((a, i) => a.map((rv, j) => rv / rNorm + grads[i][j] / gNorm));
        const vNorm = norm(v);
        v.forEach((a) => a.forEach((_, j) => a[j] /= vNorm));
        const analytic = v.reduce((s, a, i) => s + dot(a, grads[i]), 0);
        const t = 1e-3;
        const lp = lossAt(v, t);
        const lm = lossAt(v, -t);
        const numeric = ((await lp.item()) - (await lm.item())) / (2 * t);
        lp.dispose();
        lm.dispose();
        assert.ok(
          Math.abs(numeric - analytic) <= 2e-2 * Math.abs(analytic) + 2e-4,
          `${variant} direction ${d}: g·v ${analytic} vs central difference ${numeric}`,
        );
      }
      x.dispose();
      labels.dispose();
      sgd.dispose();
      for (const t of [...params, ...model.buffers()]) t.dispose();
    },
  });
}
