/**
 * The ResNet-18 (CIFAR, 32×32) training step the benchmarks and the tuner run: forward, cross-entropy,
 * backward releasing intermediates, and an SGD update (momentum 0.9, weight decay 5e-4), recorded as one
 * submit, as the trainer does. Web-standard (the browser benchmark imports it too).
 *
 * @module
 */
import { tensor } from "../engine/tensor.ts";
import { tidy } from "../engine/scope.ts";
import { crossEntropy } from "../engine/ops/loss.ts";
import { SGD } from "../engine/optim/sgd.ts";
import { ResNet18 } from "../models/resnet.ts";
import { LinearClassifier } from "../models/classifier.ts";
import { seededValues as random } from "./harness.ts";

/** One model, batch and optimiser; `step()` records a training step, `dispose()` frees everything. */
export interface ResNetStep {
  /** Records one training step (no sync). */
  step(): void;
  /** Frees the model, optimiser and batch. */
  dispose(): void;
  /** Elements of the trained parameters (model and head). */
  parameterCount: number;
  /** Elements of the model's buffers (batch-norm running statistics). */
  bufferCount: number;
}

/** A ResNet-18 of `width` (1 = 64 base channels) training on a fixed random batch of `batch` images. */
export function resnetTrainStep(batch: number, width = 1): ResNetStep {
  const model = new ResNet18({ width, seed: 1 });
  const head = new LinearClassifier(model.featureDim, 10, { seed: 2 });
  const params = [...model.parameters(), ...head.parameters()];
  const sgd = new SGD(params, { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  const x = tensor(random(batch * 3 * 32 * 32, 7), [batch, 3, 32, 32]);
  const labels = tensor(Array.from({ length: batch }, (_, i) => i % 10), [batch], { dtype: "i32" });
  return {
    parameterCount: params.reduce((n, p) => n + p.size, 0),
    bufferCount: model.buffers().reduce((n, b) => n + b.size, 0),
    step: () =>
      tidy(() => {
        const loss = crossEntropy(head.forward(model.forward(x)), labels);
        sgd.zeroGrad();
        loss.backward(undefined, { releaseIntermediates: true });
        sgd.step();
      }),
    dispose() {
      x.dispose();
      labels.dispose();
      sgd.dispose();
      for (const t of [...params, ...model.buffers()]) t.dispose();
    },
  };
}
