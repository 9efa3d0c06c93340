/**
 * Shared test helpers: device set-up with poisoned outputs, seeded random data, closeness checks
 * with stated tolerances, and float64 finite differences.
 */
import { type Gpu, initDevice } from "../engine/gpu.ts";
import { addShaderCheck } from "../engine/kernel.ts";
import "../engine/autograd.ts";
import { loopBudgetCheck } from "./wgsl_loops.ts";

let loopCheck = false;

/**
 * Initialises the device once, with poisoning of fresh outputs on (unwritten elements read NaN), and
 * checks every kernel compiled from then on against the loop budget (`tests/wgsl_loops.ts`).
 */
export async function setup(): Promise<Gpu> {
  const g = await initDevice();
  g.poison = true;
  if (!loopCheck) {
    loopCheck = true;
    addShaderCheck((code) => Promise.resolve(loopBudgetCheck(code)));
  }
  return g;
}

/** Options for Deno.test of GPU code: the device keeps resources between tests by design. */
export const gpuTest = { sanitizeResources: false, sanitizeOps: false } as const;

/** A small seeded generator (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` values uniform in [lo, hi), as float32-representable float64s. */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.fround(lo + (hi - lo) * r());
  return out;
}

/** `n` integers uniform in [0, k). */
export function randomInts(n: number, k: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r() * k));
}

/**
 * Asserts |actual − expected| ≤ atol + rtol·|expected| elementwise; NaN anywhere fails (so a
 * poisoned, unwritten element fails). Reports the worst element.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { rtol = 1e-4, atol = 1e-5, label = "" }: { rtol?: number; atol?: number; label?: string } = {},
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${label}: length ${actual.length} != expected ${expected.length}`);
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (Number.isNaN(a) || Number.isNaN(e) || excess > worstExcess) {
      worst = i;
      worstExcess = Number.isNaN(a) || Number.isNaN(e) ? Infinity : excess;
      if (worstExcess === Infinity) break;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${label}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
        `(rtol ${rtol}, atol ${atol}; ${actual.length} elements)`,
    );
  }
}

/** Central finite differences of a float64 scalar function at x. */
export function numericGrad(f: (x: Float64Array) => number, x: Float64Array, eps = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  const y = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    const orig = y[i];
    y[i] = orig + eps;
    const fp = f(y);
    y[i] = orig - eps;
    const fm = f(y);
    y[i] = orig;
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}

/** Σ a_i·b_i in float64: a random projection turns a tensor-valued op into a scalar for gradient checks. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** A small ResNet-18 training setup for step-level tests (see `resnetFixture`). */
export interface ResNetFixture {
  model: import("../models/resnet.ts").ResNet18;
  head: import("../models/classifier.ts").LinearClassifier;
  params: import("../engine/tensor.ts").Tensor[];
  sgd: import("../engine/optim/sgd.ts").SGD;
  x: import("../engine/tensor.ts").Tensor;
  labels: import("../engine/tensor.ts").Tensor;
  /** Records one training step (zeroGrad, forward, cross-entropy, backward, SGD) inside `tidy`. */
  step(opts?: { releaseIntermediates?: boolean; lr?: number }): void;
  dispose(): void;
}

/**
 * ResNet-18 of `width` with a linear head on a random batch of `batch` 32×32 images, SGD with momentum
 * 0.9 and weight decay 5e-4; seeds fix the weights (`seed`, `seed + 1`) and the data (`seed + 2`).
 */
export async function resnetFixture(width: number, batch: number, seed: number): Promise<ResNetFixture> {
  const { tensor } = await import("../engine/tensor.ts");
  const { tidy } = await import("../engine/scope.ts");
  const { crossEntropy } = await import("../engine/ops/loss.ts");
  const { SGD } = await import("../engine/optim/sgd.ts");
  const { ResNet18 } = await import("../models/resnet.ts");
  const { LinearClassifier } = await import("../models/classifier.ts");
  const model = new ResNet18({ width, seed });
  const head = new LinearClassifier(model.featureDim, 10, { seed: seed + 1 });
  const params = [...model.parameters(), ...head.parameters()];
  const sgd = new SGD(params, { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  const x = tensor(randomArray(batch * 3 * 32 * 32, seed + 2), [batch, 3, 32, 32]);
  const labels = tensor(randomInts(batch, 10, seed + 3), [batch], { dtype: "i32" });
  return {
    model,
    head,
    params,
    sgd,
    x,
    labels,
    step({ releaseIntermediates = false, lr }: { releaseIntermediates?: boolean; lr?: number } = {}) {
      tidy(() => {
        sgd.zeroGrad();
        const loss = crossEntropy(head.forward(model.forward(x)), labels);
        loss.backward(undefined, { releaseIntermediates });
        sgd.step(lr);
      });
    },
    dispose() {
      x.dispose();
      labels.dispose();
      sgd.dispose();
      for (const t of [...params, ...model.buffers()]) t.dispose();
    },
  };
}
