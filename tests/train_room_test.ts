/**
 * The training room on its own (no paper, no ResNet): the step monitor's ring buffer and first
 * non-finite step, and a `TrainLoop` over a `TrainState` (a linear classifier, SGD with momentum, an
 * i.i.d. sampler) that is stopped, checkpointed, restored into fresh objects and continued, reproducing the
 * uninterrupted run bit for bit.
 */
import nodeAssert from "node:assert/strict";
import { join } from "node:path";
import { gpuTest, setup } from "./util.ts";
import { tensor } from "../engine/tensor.ts";
import { gatherRows } from "../engine/ops/shape.ts";
import { crossEntropy } from "../engine/ops/loss.ts";
import { SGD } from "../engine/optim/sgd.ts";
import { StepMonitor } from "../engine/ops/monitor.ts";
import { BatchBuffers } from "../train/data_gpu.ts";
import { IidSampler, Rng } from "../data/sampler.ts";
import { LinearClassifier } from "../models/classifier.ts";
import { type LogRecord, TrainLoop, TrainState } from "../train/mod.ts";

Deno.test({
  name: "StepMonitor: a ring of per-step scalars and the first step with a non-finite loss",
  ...gpuTest,
  async fn() {
    await setup();
    const monitor = new StepMonitor(3, 2, 10);
    const steps = [[1, 0.5], [2], [Infinity, 0.25], [4, 1], [NaN, 2]];
    for (const v of steps) {
      const ts = v.map((x) => tensor([x]));
      monitor.record(ts);
      ts.forEach((t) => t.dispose());
    }
    const snap = await monitor.read();
    nodeAssert.equal(snap.counter, 15);
    nodeAssert.equal(snap.firstBad, 13, "step 13 (the third recorded after 10) had the first infinite loss");
    // Steps 13, 14, 15 sit in slots (s − 1) % 3 = 0, 1, 2; a missing value stores 0.
    nodeAssert.deepEqual([...snap.values[0]].map(String), ["Infinity", "4", "NaN"]);
    nodeAssert.deepEqual([...snap.values[1]], [0.25, 1, 2]);
    monitor.dispose();
  },
});

/** A run of a linear classifier on fixed features: state, loop and the loss of every step. */
function linearRun(dir: string, features: ReturnType<typeof tensor>, labels: ReturnType<typeof tensor>) {
  const model = new LinearClassifier(6, 3, { seed: 5 });
  const sgd = new SGD(model.parameters(), { lr: 0.5, momentum: 0.9, weightDecay: 1e-3 });
  const sampler = new IidSampler(40, 8, new Rng(3));
  const state = new TrainState({ modules: { "": model }, optimizer: sgd, rngs: { sampler } });
  const buffers = new BatchBuffers(8);
  const host = new Int32Array(8);
  const logged: LogRecord<unknown>[] = [];
  const make = (stopAt = 0) =>
    new TrainLoop({
      state,
      iterations: 9,
      logEvery: 2,
      step() {
        buffers.upload(sampler.next(host), null);
        const loss = crossEntropy(
          model.forward(gatherRows(features, buffers.indices)),
          gatherRows(labels, buffers.indices),
        );
        sgd.zeroGrad();
        loss.backward();
        sgd.step();
        return [loss];
      },
      onLog: (r) => void logged.push(r),
      shouldStop: (s) => s === stopAt,
      checkpoint: { path: join(dir, "ckpt.safetensors"), every: 4 },
    });
  const dispose = () => [model, sgd, buffers].forEach((x) => x.dispose());
  return { model, state, make, logged, dispose };
}

Deno.test({
  name:
    "TrainLoop + TrainState: stop, checkpoint, restore into fresh objects, continue = one uninterrupted run",
  ...gpuTest,
  async fn() {
    await setup();
    const dir = await Deno.makeTempDir({ prefix: "train_room_" });
    const r = new Rng(1);
    const features = tensor(Array.from({ length: 240 }, () => r.uniform(-1, 1)), [40, 6]);
    const labels = tensor(Int32Array.from({ length: 40 }, (_, i) => i % 3), [40], { dtype: "i32" });

    const a = linearRun(join(dir, "a"), features, labels);
    await Deno.mkdir(join(dir, "a"));
    nodeAssert.equal(await a.make().run(), "completed");
    const wa = await a.model.weight.toArray();

    await Deno.mkdir(join(dir, "b"));
    const b1 = linearRun(join(dir, "b"), features, labels);
    nodeAssert.equal(await b1.make(5).run(), "stopped");
    nodeAssert.equal(b1.state.step, 5);
    b1.dispose();
    const b2 = linearRun(join(dir, "b"), features, labels);
    const file = await b2.state.restore(join(dir, "b", "ckpt.safetensors"));
    nodeAssert.equal(file.step, 5);
    nodeAssert.equal(b2.state.step, 5);
    nodeAssert.equal(await b2.make().run(), "completed");

    const key = (l: LogRecord<unknown>[]) => l.map((x) => `${x.step}:${x.values[0]}:${x.lossMean}`);
    nodeAssert.deepEqual(key([...b1.logged, ...b2.logged]), key(a.logged));
    nodeAssert.deepEqual(await b2.model.weight.toArray(), wa, "final weights are identical");
    a.dispose();
    b2.dispose();
    features.dispose();
    labels.dispose();
    await Deno.remove(dir, { recursive: true });
  },
});
