/**
 * "No hidden synchronisation": a training loop that records one step after the other and submits one
 * command buffer per step (one `flush()`, as the trainer does) must take about as long as the GPU work
 * of its steps; a hidden readback or wait per step would add a round trip (~11 ms on the software
 * adapter) each.
 *
 * Model: ResNet-18 (CIFAR, 32×32) of width `--width` (default 0.25) with a linear classifier, batch
 * `--batch` (default 8), cross-entropy, SGD with momentum 0.9 and weight decay 5e-4. Every step writes
 * the next batch's labels with an ordered write (`writeTensor`) and uses a polynomial learning rate
 * (`sgd.step(lr)`, an ordered 16-byte write); nothing is read back until the end.
 *
 * Measured (after warm-up steps that compile every pipeline):
 * - loop: wall time of `--steps` (default 50) such steps followed by one `await gpu().sync()`;
 * - GPU: the sum of the GPU timestamps of every dispatch of one profiled step (`gpu().profile`),
 *   median of `--repeats` (default 3) profiled steps, times the number of steps;
 * - single: wall time of one step followed by a sync, minus the round trip of an empty sync (the
 *   alternative estimate of one step's GPU time, which also includes per-pass overheads).
 * The ratio loop / (steps × GPU step) is the overhead; the target is within 10% (≤ 1.10).
 *
 * Usage: deno run --allow-read --allow-write --allow-env bench/sync_overhead.ts [--steps 50]
 *   [--width 0.25] [--batch 8] [--repeats 3] [--json out.json]
 *
 * @module
 */
import process from "node:process";
import { gpu, initDevice } from "../engine/gpu.ts";
import "../engine/autograd.ts";
import { tensor, writeTensor } from "../engine/tensor.ts";
import { tidy } from "../engine/scope.ts";
import { crossEntropy } from "../engine/ops/loss.ts";
import { SGD } from "../engine/optim/sgd.ts";
import { polynomialLr } from "../engine/optim/schedule.ts";
import { ResNet18 } from "../models/resnet.ts";
import { LinearClassifier } from "../models/classifier.ts";
import { arg, seededValues as random } from "./harness.ts";

const STEPS = Number(arg("steps", "50"));
const WIDTH = Number(arg("width", "0.25"));
const BATCH = Number(arg("batch", "8"));
const REPEATS = Number(arg("repeats", "3"));
const JSON_OUT = arg("json", "");
const CORES = navigator.hardwareConcurrency;

const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];

await initDevice();
const g = gpu();
const model = new ResNet18({ width: WIDTH, seed: 1 });
const head = new LinearClassifier(model.featureDim, 10, { seed: 2 });
const sgd = new SGD([...model.parameters(), ...head.parameters()], {
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 5e-4,
});
const x = tensor(random(BATCH * 3 * 32 * 32, 7), [BATCH, 3, 32, 32]);
const labels = tensor(new Int32Array(BATCH), [BATCH], { dtype: "i32" });
const total = STEPS + 100;
let t = 0;

/** One trainer-like step: ordered label write, forward, backward, SGD at a polynomial lr, one flush. */
function step(): void {
  writeTensor(labels, Array.from({ length: BATCH }, (_, i) => (i * 7 + t * 3) % 10));
  const lr = polynomialLr(0.1, t, total, 0.9);
  tidy(() => {
    const loss = crossEntropy(head.forward(model.forward(x)), labels);
    sgd.zeroGrad();
    loss.backward(undefined, { releaseIntermediates: true });
    sgd.step(lr);
  });
  g.flush();
  t++;
}

// Warm-up: pipelines, bind groups, buffer pool.
for (let i = 0; i < 3; i++) {
  step();
  await g.sync();
}

// Round trip of an empty sync (nothing recorded).
const empties: number[] = [];
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  await g.sync();
  empties.push(performance.now() - t0);
}
const roundTrip = median(empties);

// One step's GPU time: profiled steps (per-dispatch timestamps), and single synced steps.
const gpuStep: number[] = [];
const single: number[] = [];
for (let r = 0; r < REPEATS; r++) {
  await g.profileReport();
  g.profile = true;
  step();
  const report = await g.profileReport();
  g.profile = false;
  gpuStep.push(report.dispatchMs);
  const t0 = performance.now();
  step();
  await g.sync();
  single.push(performance.now() - t0 - roundTrip);
}

// The loop: no readback until the end.
const readbacks0 = g.counters.readbacks;
const submits0 = g.counters.submits;
const c0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < STEPS; i++) step();
await g.sync();
const loopMs = performance.now() - t0;
const used = process.cpuUsage(c0);
const readbacks = g.counters.readbacks - readbacks0;
const submits = g.counters.submits - submits0;
const lossCheck = await tidy(() => crossEntropy(head.forward(model.forward(x)), labels)).item();

const gpuMs = median(gpuStep);
const singleMs = median(single);
const result = {
  steps: STEPS,
  width: WIDTH,
  batch: BATCH,
  loopMs,
  loopCpuMsPerCore: (used.user + used.system) / 1000 / CORES,
  perStepMs: loopMs / STEPS,
  gpuStepMs: gpuMs,
  singleStepMs: singleMs,
  roundTripMs: roundTrip,
  ratioVsTimestamps: loopMs / (STEPS * gpuMs),
  ratioVsSingleStep: loopMs / (STEPS * singleMs),
  submits,
  readbacks,
  finalLoss: lossCheck,
};
console.log(`adapter: ${g.report.name}; ResNet-18 width ${WIDTH}, batch ${BATCH}, ${STEPS} steps`);
console.log(
  `loop: ${loopMs.toFixed(0)} ms wall (${result.perStepMs.toFixed(1)} ms/step), ${submits} submits, ` +
    `${readbacks} readbacks during the loop`,
);
console.log(
  `one step: GPU timestamps ${gpuMs.toFixed(1)} ms (median of ${REPEATS}); synced single step ` +
    `${singleMs.toFixed(1)} ms after subtracting the ${roundTrip.toFixed(1)} ms round trip`,
);
console.log(
  `ratio loop / (${STEPS} × step): ${result.ratioVsTimestamps.toFixed(3)} vs timestamps, ` +
    `${result.ratioVsSingleStep.toFixed(3)} vs single synced step (target ≤ 1.10); final loss ${
      lossCheck.toFixed(4)
    }`,
);
x.dispose();
labels.dispose();
sgd.dispose();
for (const p of [...model.parameters(), ...head.parameters()]) p.dispose();
if (JSON_OUT) await Deno.writeTextFile(JSON_OUT, JSON.stringify(result, null, 2));
