/**
 * Peak GPU memory of one ResNet-18 (CIFAR, 32×32) training step against what must be live.
 *
 * Must be live: parameters, gradients and momentum (3 × 4 bytes per parameter, plus the running BN
 * buffers) and the activations saved for backward, counted from the model's shapes: the input image,
 * every convolution's output (the input of a BatchNorm, needed for its statistics' gradient), every
 * BN+ReLU output (the input of the next convolution, needed for its grad weight), every block output
 * (the ReLU mask and the next block's input), the BN statistics and the pooled features. Forward
 * results that no backward reads (the plain BN output and the pre-ReLU residual sum of each block)
 * are not counted.
 *
 * The step runs as the trainer runs it (one `tidy` around forward, loss, backward, SGD, one submit),
 * from a pool trimmed to the live buffers; the pool's `peakTotalBytes` (live + pooled buffers: what the
 * GPU holds) and `peakLiveBytes` are read after it. The model's blocks use the fused `addRelu` and
 * release their BN outputs after it (`Tensor#releaseData`), so neither is held during backward.
 *
 * By default the step runs in the accounting mode `Gpu.dryRun`: every allocation, release, bind group,
 * copy and submit happens as in a real step, only no kernel runs, so the pool's numbers are those of the
 * real step (`tests/memory_test.ts` checks the two event by event) at a fraction of the time (a real
 * batch-256 step takes about ten minutes on a software adapter). `--real` runs the kernels too.
 *
 * Usage: deno run --allow-read --allow-write --allow-env bench/memory_step.ts [--runs 32:1,256:1]
 *   [--real] [--json out.json]
 *
 * @module
 */
import { gpu, initDevice } from "../engine/gpu.ts";
import "../engine/autograd.ts";
import { resnetWidths } from "../models/resnet.ts";
import { arg } from "./harness.ts";
import { resnetTrainStep } from "./resnet_step.ts";

if (Deno.args.includes("--help")) {
  console.log(
    "deno run --allow-read --allow-write --allow-env bench/memory_step.ts [--runs 32:1,256:1] [--real] " +
      "[--json out.json]",
  );
  Deno.exit(0);
}

const RUNS = arg("runs", "32:1,256:1").split(",").map((r) => r.split(":").map(Number));
const JSON_OUT = arg("json", "");
const REAL = Deno.args.includes("--real");
const MB = 2 ** 20;

/** Bytes that must be live in a training step of the standard ResNet-18 at `batch` and `width`. */
export function mustBeLive(batch: number, width: number, params: number, buffers: number) {
  const [c1, c2, c3, c4] = resnetWidths(width);
  const act = (c: number, hw: number) => batch * c * hw * hw * 4;
  let activations = act(3, 32) + act(c1, 32) * 2; // input; stem conv out; stem BN+ReLU out
  let stats = 4 * c1 * 4;
  let inPlanes = c1;
  let hw = 32;
  [[c1, 1], [c2, 2], [c3, 2], [c4, 2]].forEach(([planes, stride]) => {
    for (const s of [stride, 1]) {
      hw = hw / s;
      const shortcut = s !== 1 || inPlanes !== planes;
      // conv1 out, BN1+ReLU out, conv2 out, block output; shortcut conv out.
      activations += act(planes, hw) * (4 + (shortcut ? 1 : 0));
      stats += 4 * planes * 4 * (2 + (shortcut ? 1 : 0));
      inPlanes = planes;
    }
  });
  activations += batch * c4 * 4; // pooled features (input of the classifier)
  const state = params * 4 * 3 + buffers * 4;
  return { state, activations: activations + stats, total: state + activations + stats };
}

async function run(batch: number, width: number) {
  const model = resnetTrainStep(batch, width);
  const nParams = model.parameterCount;
  const nBuffers = model.bufferCount;
  const need = mustBeLive(batch, width, nParams, nBuffers);
  await gpu().sync();
  gpu().pool.trim(); // start from live buffers only
  gpu().pool.resetPeak();
  const before = gpu().memory();
  const t0 = performance.now();
  gpu().dryRun = !REAL;
  try {
    model.step(); // releases intermediates in backward, as the trainer runs it
    await gpu().sync();
  } finally {
    gpu().dryRun = false;
  }
  const ms = performance.now() - t0;
  const after = gpu().memory();
  // Input and labels are live before the step and counted in `need` (the input) already.
  const result = {
    batch,
    width,
    mode: REAL ? "real" : "dry run",
    stepMs: ms,
    mustBeLiveMB: need.total / MB,
    stateMB: need.state / MB,
    activationsMB: need.activations / MB,
    liveBeforeMB: before.liveBytes / MB,
    peakLiveMB: after.peakLiveBytes / MB,
    peakTotalMB: after.peakTotalBytes / MB,
    ratioLive: after.peakLiveBytes / need.total,
    ratioTotal: after.peakTotalBytes / need.total,
  };
  console.log(
    `batch ${batch} width ${width}: must be live ${result.mustBeLiveMB.toFixed(1)} MB ` +
      `(state ${result.stateMB.toFixed(1)}, activations ${result.activationsMB.toFixed(1)}); peak live ` +
      `${result.peakLiveMB.toFixed(1)} MB (×${result.ratioLive.toFixed(3)}), peak held ` +
      `${result.peakTotalMB.toFixed(1)} MB (×${result.ratioTotal.toFixed(3)}); ${result.mode} step ${
        (ms / 1000).toFixed(1)
      } s`,
  );
  model.dispose();
  await gpu().sync();
  gpu().pool.trim();
  return result;
}

await initDevice();
const results = [];
for (const [batch, width] of RUNS) results.push(await run(batch, width));
if (JSON_OUT) await Deno.writeTextFile(JSON_OUT, JSON.stringify(results, null, 2));
