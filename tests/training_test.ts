/**
 * End-to-end training: the models, ops, autograd and SGD together. A small conv net and a narrow
 * ResNet-18 fit a fixed synthetic batch with cross-entropy, a narrow ResNet-18 lowers the
 * supervised contrastive loss on the sphere, and a 100-step loop inside `tidy` keeps the number of
 * live GPU buffers flat and returns to the baseline after disposing the model and optimiser.
 */
import assert from "node:assert/strict";
import { randomArray, rng, setup } from "./util.ts";
import { test } from "./harness.ts";
import { gpu } from "../engine/gpu.ts";
import { type Tensor, tensor } from "../engine/tensor.ts";
import { tidy } from "../engine/scope.ts";
import { globalAvgPool } from "../engine/ops/pool.ts";
import { crossEntropy, normalizeToSphere, supConLoss } from "../engine/ops/loss.ts";
import { SGD } from "../engine/optim/sgd.ts";
import { Rng } from "../data/sampler.ts";
import { BatchNorm2d, Conv2d, LinearClassifier, Module, ResNet18 } from "../models/mod.ts";

/** conv(3→8, 3×3) → BN → ReLU → global average pool → linear (bias-free). */
class SmallNet extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  readonly fc: LinearClassifier;

  constructor(classes: number, seed: number) {
    super();
    const r = new Rng(seed);
    this.conv = this.registerModule("conv", new Conv2d(3, 8, 3, { padding: 1, rng: r }));
    this.bn = this.registerModule("bn", new BatchNorm2d(8));
    this.fc = this.registerModule("fc", new LinearClassifier(8, classes, { seed: seed + 1 }));
  }

  forward(x: Tensor): Tensor {
    return this.fc.forward(globalAvgPool(this.bn.forward(this.conv.forward(x), true)));
  }
}

/**
 * A fixed batch of `n` images 3×size×size in `classes` classes: each class has its own per-channel
 * offset pattern plus a random spatial template, and every image adds noise. Labels cycle 0..K−1.
 */
function syntheticBatch(n: number, classes: number, size: number, seed: number): { x: Tensor; y: Tensor } {
  const r = rng(seed);
  const hw = size * size;
  const templates = Array.from({ length: classes }, (_, k) => randomArray(3 * hw, seed + 100 + k, -1, 1));
  const offsets = Array.from({ length: classes }, () => [0, 1, 2].map(() => 2 * r() - 1));
  const data = new Float32Array(n * 3 * hw);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % classes;
    labels[i] = k;
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < hw; p++) {
        data[(i * 3 + c) * hw + p] = offsets[k][c] + 0.5 * templates[k][c * hw + p] + 0.5 * (2 * r() - 1);
      }
    }
  }
  return { x: tensor(data, [n, 3, size, size]), y: tensor(labels, [n], { dtype: "i32" }) };
}

/** Runs `steps` SGD steps of `lossFn` (inside tidy) and returns the loss of each step. */
async function train(opt: SGD, steps: number, lossFn: () => Tensor): Promise<number[]> {
  const losses: number[] = [];
  for (let t = 0; t < steps; t++) {
    const loss = tidy(() => {
      opt.zeroGrad();
      const l = lossFn();
      l.backward();
      opt.step();
      return l;
    });
    losses.push(await loss.item());
    loss.dispose();
  }
  return losses;
}

const fmt = (xs: number[]) => xs.map((v) => v.toFixed(3)).join(" ");

test({
  name: "training: small conv net (conv→BN→ReLU→GAP→linear) fits a synthetic batch with CE + SGD",
  fn: async () => {
    await setup();
    const { x, y } = syntheticBatch(16, 4, 16, 1);
    const net = new SmallNet(4, 2);
    const opt = new SGD(net.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 0 });
    const losses = await train(opt, 20, () => crossEntropy(net.forward(x), y));
    assert.ok(losses.every(Number.isFinite), fmt(losses));
    const last = Math.min(...losses.slice(-3));
    assert.ok(last < 0.7 * losses[0], `loss ${losses[0].toFixed(3)} → ${last.toFixed(3)}: ${fmt(losses)}`);
    opt.dispose();
    net.dispose();
    x.dispose();
    y.dispose();
  },
});

test({
  name: "training: narrow ResNet-18 (width 1/16) + linear classifier fits a synthetic batch with CE + SGD",
  // Many steps of the kernels that models_test's gradient check verifies under both strategies; under the
  // "gpu" strategy a minute and a half on SwiftShader.
  dawn: "once",
  fn: async () => {
    await setup();
    const { x, y } = syntheticBatch(16, 4, 16, 3);
    const encoder = new ResNet18({ width: 1 / 16, seed: 4 });
    const head = new LinearClassifier(encoder.featureDim, 4, { seed: 5 });
    const opt = new SGD([...encoder.parameters(), ...head.parameters()], {
      lr: 0.05,
      momentum: 0.9,
      weightDecay: 1e-4,
    });
    const losses = await train(opt, 15, () => crossEntropy(head.forward(encoder.forward(x)), y));
    assert.ok(losses.every(Number.isFinite), fmt(losses));
    const last = Math.min(...losses.slice(-3));
    assert.ok(last < 0.7 * losses[0], `loss ${losses[0].toFixed(3)} → ${last.toFixed(3)}: ${fmt(losses)}`);
    opt.dispose();
    encoder.dispose();
    head.dispose();
    x.dispose();
    y.dispose();
  },
});

test({
  name: "training: SC path, narrow ResNet-18 → normalizeToSphere(√10) → supConLoss falls",
  // As above; the SC loss kernels are checked under both strategies by ops_loss_test.
  dawn: "once",
  fn: async () => {
    await setup();
    const { x, y } = syntheticBatch(16, 4, 16, 6);
    const encoder = new ResNet18({ width: 1 / 16, seed: 7 });
    const opt = new SGD(encoder.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 });
    const losses = await train(
      opt,
      15,
      () => supConLoss(normalizeToSphere(encoder.forward(x), Math.sqrt(10)), y),
    );
    assert.ok(losses.every(Number.isFinite), fmt(losses));
    // Floor: 16 anchors with 3 positives each at a collapsed simplex, Σ log(3 + 12·e^{−40/3}) ≈ 17.58.
    const floor = 16 * Math.log(3 + 12 * Math.exp(-40 / 3));
    const last = Math.min(...losses.slice(-3));
    assert.ok(
      losses[0] > floor && last >= floor - 1e-3,
      `loss stays above the bound ${floor}: ${fmt(losses)}`,
    );
    assert.ok(
      last - floor < 0.6 * (losses[0] - floor),
      `loss ${losses[0].toFixed(3)} → ${last.toFixed(3)}: ${fmt(losses)}`,
    );
    opt.dispose();
    encoder.dispose();
    x.dispose();
    y.dispose();
  },
});

test({
  name: "training: 100 steps inside tidy keep live buffers flat; disposing model + optimiser restores them",
  fn: async () => {
    await setup();
    const { x, y } = syntheticBatch(8, 4, 8, 8);
    await gpu().sync();
    const before = gpu().memory().liveBuffers;
    const net = new SmallNet(4, 9);
    const opt = new SGD(net.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 });
    let at10 = -1;
    let loss = 0;
    for (let t = 1; t <= 100; t++) {
      tidy(() => {
        opt.zeroGrad();
        const l = crossEntropy(net.forward(x), y);
        l.backward();
        opt.step();
      });
      if (t === 10) at10 = gpu().memory().liveBuffers;
      if (t === 100) {
        assert.equal(gpu().memory().liveBuffers, at10, "live buffers after step 100 = after step 10");
        const l = tidy(() => crossEntropy(net.forward(x), y));
        loss = await l.item();
        l.dispose();
      }
    }
    assert.ok(Number.isFinite(loss), `final loss ${loss}`);
    opt.dispose();
    net.dispose();
    await gpu().sync();
    assert.equal(gpu().memory().liveBuffers, before, "model and optimiser freed every buffer");
    x.dispose();
    y.dispose();
  },
});
