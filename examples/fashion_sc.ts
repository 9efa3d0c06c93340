/**
 * Your own model and loss with the training room (`train/`): a small conv net trained on Fashion-MNIST
 * with the supervised contrastive loss, then a linear probe on the frozen encoder and its test error.
 * Falls back to synthetic 28×28 images when Fashion-MNIST is absent (`apt-get install dataset-fashion-mnist`).
 *
 *   deno run -A examples/fashion_sc.ts [--steps 150] [--n 2048] [--out runs/fashion_sc]
 * @module
 */
import { parseArgs } from "node:util";
import {
  BatchNorm2d,
  Conv2d,
  firstN,
  globalAvgPool,
  IidSampler,
  initDevice,
  Module,
  normalizeToSphere,
  polynomialLr,
  Rng,
  SGD,
  subset,
  supConLoss,
  syntheticDataset,
  type Tensor,
} from "../mod.ts";
import { findFashionMnist, loadFashionMnist } from "../data/files.ts";
import {
  BatchFeed,
  evaluateError,
  GpuDataset,
  sphereEncoder,
  TrainLoop,
  trainProbe,
  TrainState,
} from "../train/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    steps: { type: "string", default: "150" },
    n: { type: "string", default: "2048" },
    out: { type: "string", default: "runs/fashion_sc" },
  },
});
const steps = Number(values.steps), n = Number(values.n), batch = 128, tau = 0.1;

/** The encoder: two strided 3×3 convolutions with BatchNorm + ReLU, then global average pooling. */
class SmallNet extends Module {
  readonly featureDim = 32;
  conv1 = this.registerModule("conv1", new Conv2d(1, 16, 3, { stride: 2, padding: 1, rng: 1 }));
  bn1 = this.registerModule("bn1", new BatchNorm2d(16));
  conv2 = this.registerModule("conv2", new Conv2d(16, 32, 3, { stride: 2, padding: 1, rng: 2 }));
  bn2 = this.registerModule("bn2", new BatchNorm2d(32));
  forward(x: Tensor): Tensor {
    const h = this.bn1.forward(this.conv1.forward(x), true); // conv → BN → ReLU
    return globalAvgPool(this.bn2.forward(this.conv2.forward(h), true)); // [b, 32]
  }
}

await initDevice();
const fashion = findFashionMnist() !== null;
const all = fashion
  ? null
  : syntheticDataset({ n: n + 1000, numClasses: 10, channels: 1, height: 28, width: 28 });
const trainSet = all ? firstN(all, n) : firstN(await loadFashionMnist("train"), n);
const testSet = all
  ? subset(all, Array.from({ length: 1000 }, (_, i) => n + i))
  : firstN(await loadFashionMnist("test"), 1000);
const train = GpuDataset.upload(trainSet); // uint8 images on the GPU, normalised per channel when assembled
const test = GpuDataset.upload(testSet, { stats: train.stats });

const model = new SmallNet();
const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
const sampler = new IidSampler(train.n, batch, new Rng(1));
const augment = new Rng(2); // random crop (zero padding 4) and horizontal flip
const feed = new BatchFeed(train, { sampler, augment });
// Everything a resumed run needs, checkpointed whole (resume: `await state.restore(path)` before the loop).
const state = new TrainState({ modules: { "": model }, optimizer: opt, rngs: { sampler, augment } });
const radius = 1 / Math.sqrt(tau); // SC on the sphere of radius ρ = 1/√τ

await Deno.mkdir(values.out!, { recursive: true });
const loop = new TrainLoop({
  state,
  iterations: steps,
  logEvery: 50, // the loss is read back only every 50 steps; a step is one submit
  step(t) {
    const { x, y } = feed.next();
    const loss = supConLoss(normalizeToSphere(model.forward(x), radius), y); // Eq. 6: a sum over anchors
    opt.zeroGrad();
    loss.backward();
    opt.step(polynomialLr(0.1, t, steps, 1));
    return [loss];
  },
  onLog: (r) => console.log(`step ${r.step}: SC loss per anchor ${(r.values[0] / batch).toFixed(4)}`),
  checkpoint: { path: `${values.out}/checkpoint.safetensors`, every: 100 }, // and on SIGINT/SIGTERM
});
console.log(`${await loop.run()} after ${state.step} steps`);
await loop.save(true); // the final checkpoint

// A linear probe on the frozen encoder's projected features, then the test error.
const encoder = sphereEncoder(model, radius);
const { probe } = await trainProbe({ model: encoder, data: train, augment: false }, {
  numClasses: 10,
  iterations: 300,
});
const { error } = await evaluateError(encoder, probe, test);
console.log(`test error ${(100 * error).toFixed(1)}% on ${fashion ? "Fashion-MNIST" : "synthetic data"}`);
