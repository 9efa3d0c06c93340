/**
 * The two benchmark cases `bench/browser.ts` runs in Deno and in Chromium alike (engine code only, nothing
 * of a runtime): the 1024³ matmul and one ResNet-18 (CIFAR, 32×32) training step, timed as
 * `bench/gemm_bench.ts` and `bench/profile_step.ts` time them (warm-up first, then samples each ending in
 * `await gpu().sync()`, median).
 *
 * @module
 */
import { gpu } from "../engine/gpu.ts";
import "../engine/autograd.ts";
import { tensor } from "../engine/tensor.ts";
import { matmul } from "../engine/ops/matmul.ts";
import { resnet18StepFlop, seededValues as random } from "./harness.ts";
import { resnetTrainStep } from "./resnet_step.ts";

/** One timed case. */
export interface CaseTiming {
  case: string;
  /** Median and extremes of the per-call (per-step) wall time, ms. */
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** Samples taken; calls per sample. */
  samples: number;
  calls: number;
  /** FLOPs / median time. */
  gflops: number;
  /** Wall time of the warm-up (pipeline compilation and first runs), ms. */
  warmupMs: number;
}

const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];

/** matmul [1024, 1024]·[1024, 1024]: `calls` matmuls per sample (gemm_bench's k, 3), `samples` samples. */
export async function benchMatmul1024(samples = 5, calls = 3): Promise<CaseTiming> {
  const n = 1024;
  const a = tensor(random(n * n, 1), [n, n]);
  const b = tensor(random(n * n, 2), [n, n]);
  const t0 = performance.now();
  matmul(a, b).dispose();
  await gpu().sync();
  const warmupMs = performance.now() - t0;
  const times: number[] = [];
  for (let s = 0; s < samples; s++) {
    const t = performance.now();
    for (let i = 0; i < calls; i++) matmul(a, b).dispose();
    await gpu().sync();
    times.push((performance.now() - t) / calls);
  }
  a.dispose();
  b.dispose();
  const m = median(times);
  return {
    case: "matmul 1024×1024 · 1024×1024",
    medianMs: m,
    minMs: Math.min(...times),
    maxMs: Math.max(...times),
    samples,
    calls,
    gflops: 2 * n ** 3 / m / 1e6,
    warmupMs,
  };
}

/**
 * One ResNet-18 training step at `batch` (forward, cross-entropy, backward releasing intermediates, SGD
 * with momentum 0.9 and weight decay 5e-4, one submit) as profile_step.ts runs it: 2 warm-up steps, then
 * `steps` steps each synced.
 */
export async function benchResNetStep(batch = 8, steps = 3, width = 1): Promise<CaseTiming> {
  const { step, dispose } = resnetTrainStep(batch, width);
  const t0 = performance.now();
  for (let i = 0; i < 2; i++) {
    step();
    await gpu().sync();
  }
  const warmupMs = performance.now() - t0;
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    step();
    await gpu().sync();
    times.push(performance.now() - t);
  }
  const flops = resnet18StepFlop(batch, Math.round(64 * width)); // as bench/run.ts counts a step
  dispose();
  const m = median(times);
  return {
    case: `ResNet-18 train step (CE, SGD momentum), batch ${batch}`,
    medianMs: m,
    minMs: Math.min(...times),
    maxMs: Math.max(...times),
    samples: steps,
    calls: 1,
    gflops: flops / m / 1e6,
    warmupMs,
  };
}
