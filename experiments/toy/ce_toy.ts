/**
 * Shared toy trainers of Section 3 (Figs. 1 and 4): free points Z with labels, optimised directly on
 * the GPU with the engine's ops and optimisers.
 *
 * - {@link trainCeToy}: minimises L_CE(Z, W) + λ‖W‖²_F over Z (rows in the ball of radius ρ_Z,
 *   projected after every step) and W (the penalty as weight decay 2λ, PyTorch convention).
 * - Geometry helpers ({@link toyGeometry}) measure how far a configuration is from the regular
 *   simplex of the theory (class spread, angles between class means, weight norms and directions).
 *
 * Losses are read back only at the requested log steps; every other step is recorded on the GPU
 * without a readback.
 *
 * @module
 */
import { TensorScope } from "../../engine/scope.ts";
import { type Tensor, tensor } from "../../engine/tensor.ts";
import "../../engine/autograd.ts";
import { matmul } from "../../engine/ops/matmul.ts";
import { crossEntropy } from "../../engine/ops/loss.ts";
import { SGD } from "../../engine/optim/sgd.ts";
import { projectToBall } from "../../engine/optim/projection.ts";
import { Rng } from "../../data/sampler.ts";
import { angleBetween, ceBoundCorollary2, ceLossF64, classMeans, toRows } from "../../theory/mod.ts";

/** CLI options of the low-learning-rate final phase, shared by fig1 and fig4. */
export const FINAL_PHASE_OPTIONS = {
  finalFraction: {
    type: "number",
    default: 0.2,
    min: 0,
    max: 1,
    description: "fraction of steps at the end with lr × final-lr-scale",
  },
  finalLrScale: { type: "number", default: 0.1, min: 0, description: "lr factor of the final phase" },
} as const;

/**
 * `n` points drawn uniformly from the ball (or, with `onSphere`, the sphere) of radius `radius`
 * in R^h, as a flat row-major Float32Array [n·h].
 */
export function sampleBall(
  n: number,
  h: number,
  radius: number,
  rng: Rng,
  onSphere = false,
): Float32Array {
  const out = new Float32Array(n * h);
  const dir = new Float64Array(h);
  for (let i = 0; i < n; i++) {
    let norm = 0;
    do {
      norm = 0;
      for (let d = 0; d < h; d++) {
        dir[d] = rng.normal();
        norm += dir[d] * dir[d];
      }
    } while (norm === 0);
    norm = Math.sqrt(norm);
    const r = onSphere ? radius : radius * Math.pow(rng.uniform(), 1 / h);
    for (let d = 0; d < h; d++) out[i * h + d] = (r * dir[d]) / norm;
  }
  return out;
}

/** Balanced labels 0..K−1, `nPerClass` each, class-major (`[0,0,..,1,1,..]`). */
export function balancedLabels(K: number, nPerClass: number): Int32Array {
  return Int32Array.from({ length: K * nPerClass }, (_, i) => Math.floor(i / nPerClass));
}

/** Squared Frobenius norm of a flat array, in float64. */
export function sumSquares(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return s;
}

/** Row norms of a flat row-major matrix with row length `dim`. */
export function rowNorms(a: ArrayLike<number>, dim: number): number[] {
  const out: number[] = [];
  for (let r = 0; r * dim < a.length; r++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += a[r * dim + d] ** 2;
    out.push(Math.sqrt(s));
  }
  return out;
}

/** Distance of a point configuration (and optionally weights) from the theory's simplex optimum. */
export interface ToyGeometry {
  /** Number of classes. */
  K: number;
  /** Norms of the K class means (ρ_Z at the simplex). */
  meanNorms: number[];
  /** Angles (degrees) between distinct class means, i<j (the simplex: arccos(−1/(K−1))). */
  meanAnglesDeg: number[];
  /** The simplex angle arccos(−1/(K−1)) in degrees. */
  simplexAngleDeg: number;
  /** Largest |angle − simplex angle| over pairs of class means, degrees. */
  maxAngleErrorDeg: number;
  /** Largest distance of a point from its class mean (0 at collapse). */
  maxSpread: number;
  /** Root-mean-square distance of the points from their class means. */
  rmsSpread: number;
  /** Weight row norms ‖w_y‖ (when weights are given). */
  weightNorms?: number[];
  /** Angle (degrees) between w_y and the class mean μ_y (0 under condition C3). */
  weightMeanAnglesDeg?: number[];
}

/**
 * Measures class collapse (spread around class means), the angles between class means, and for a
 * classifier W the norms of its rows and their angles to the class means.
 *
 * @param Z flat row-major points [N·h]
 * @param labels one label in 0..K−1 per point
 * @param K number of classes
 * @param h dimension
 * @param W optional flat classifier [K·h]
 */
export function toyGeometry(
  Z: ArrayLike<number>,
  labels: ArrayLike<number>,
  K: number,
  h: number,
  W?: ArrayLike<number>,
): ToyGeometry {
  const rows = toRows({ data: Z, dim: h });
  const mu = classMeans(rows, labels, K);
  const meanNorms = mu.map((m) => Math.sqrt(sumSquares(m)));
  const simplexAngleDeg = (Math.acos(-1 / (K - 1)) * 180) / Math.PI;
  const meanAnglesDeg: number[] = [];
  for (let i = 0; i < K; i++) {
    for (let j = i + 1; j < K; j++) meanAnglesDeg.push((angleBetween(mu[i], mu[j]) * 180) / Math.PI);
  }
  let maxSpread = 0, ss = 0;
  for (let n = 0; n < rows.length; n++) {
    let d2 = 0;
    for (let d = 0; d < h; d++) d2 += (rows[n][d] - mu[labels[n]][d]) ** 2;
    ss += d2;
    maxSpread = Math.max(maxSpread, Math.sqrt(d2));
  }
  const g: ToyGeometry = {
    K,
    meanNorms,
    meanAnglesDeg,
    simplexAngleDeg,
    maxAngleErrorDeg: Math.max(...meanAnglesDeg.map((a) => Math.abs(a - simplexAngleDeg))),
    maxSpread,
    rmsSpread: Math.sqrt(ss / rows.length),
  };
  if (W) {
    const w = toRows({ data: W, dim: h });
    g.weightNorms = w.map((r) => Math.sqrt(sumSquares(r)));
    g.weightMeanAnglesDeg = w.map((r, y) => (angleBetween(r, mu[y]) * 180) / Math.PI);
  }
  return g;
}

/** Options of {@link trainCeToy}. */
export interface CeToyOptions {
  /** Number of classes K. */
  K: number;
  /** Dimension h (≥ K−1 for the bound to be attainable). */
  h: number;
  /** Points per class n (N = K·n). */
  nPerClass: number;
  /** Penalty λ of λ‖W‖²_F. */
  lambda: number;
  /** Radius ρ_Z of the ball the points live in (default 1). */
  rhoZ?: number;
  /** Gradient steps. */
  steps: number;
  /**
   * Learning rate of each point, in units of the per-point loss: the optimiser of Z uses `lrZ·N` on
   * the gradient of the mean loss (each point's gradient carries a 1/N).
   */
  lrZ: number;
  /** Learning rate of W. */
  lrW: number;
  /**
   * Divide Z's learning rate by min(1, r_W(ρ_Z, λ)) (default false). A point's gradient scales with
   * ‖W‖ ≈ r_W, so for large λ (small weights) the points would otherwise move very slowly.
   */
  lrZByRW?: boolean;
  /** Momentum of both optimisers (default 0.9). */
  momentum?: number;
  /** Fraction of the steps at the end run at `finalLrScale` times the learning rates (default 0.2). */
  finalFraction?: number;
  /** Learning-rate factor of the final phase (default 0.1). */
  finalLrScale?: number;
  /** Seed of the random start. */
  seed: number;
  /** Standard deviation of the initial weights (default 1). */
  wInitStd?: number;
  /** Steps at which losses are read back (0 = the start; `steps` is always included). */
  logSteps?: readonly number[];
  /** Keep copies of Z and W at the log steps (for snapshot figures; default false). */
  keepSnapshots?: boolean;
  /** Called after each readback (progress display); awaited, so a caller can pause the run here, or end it
   * by throwing (the tensors are freed). */
  onLog?: (record: CeToyRecord) => void | Promise<void>;
}

/** One readback of the CE toy run. */
export interface CeToyRecord {
  /** Steps done. */
  step: number;
  /** L_CE as computed on the GPU (float32). */
  ce: number;
  /** λ‖W‖²_F (float64 from the read-back W). */
  penalty: number;
  /** ce + penalty. */
  objective: number;
  /** L_CE recomputed in float64 from the read-back Z and W (a check of the GPU value). */
  ceF64: number;
  /** Mean row norm of W. */
  meanWNorm: number;
  /** Points (only with `keepSnapshots`). */
  Z?: Float32Array;
  /** Weights (only with `keepSnapshots`). */
  W?: Float32Array;
}

/** Result of {@link trainCeToy}. */
export interface CeToyResult {
  /** Final points, flat [N·h]. */
  Z: Float32Array;
  /** Final weights, flat [K·h]. */
  W: Float32Array;
  /** Labels. */
  labels: Int32Array;
  /** Readbacks at the log steps (the last is the final state). */
  records: CeToyRecord[];
  /** Corollary 2 bound on the objective and r_W(ρ_Z, λ). */
  bound: number;
  /** r_W(ρ_Z, λ): the common row norm at the optimum. */
  rW: number;
  /** Final geometry. */
  geometry: ToyGeometry;
  /** Wall time in seconds. */
  seconds: number;
}

/**
 * Minimises L_CE(Z, W; Y) + λ‖W‖²_F by full-batch gradient descent with momentum on the GPU: the
 * points Z (projected to the ball of radius ρ_Z after each step) and the bias-free classifier W.
 * The device must be initialised (`await initDevice()`).
 */
export async function trainCeToy(o: CeToyOptions): Promise<CeToyResult> {
  const t0 = performance.now();
  const { K, h, nPerClass, lambda, steps } = o;
  const rhoZ = o.rhoZ ?? 1;
  const N = K * nPerClass;
  const momentum = o.momentum ?? 0.9;
  const finalFraction = o.finalFraction ?? 0.2;
  const finalLrScale = o.finalLrScale ?? 0.1;
  const rng = new Rng(o.seed);
  const labelsHost = balancedLabels(K, nPerClass);
  const Z0 = sampleBall(N, h, rhoZ, rng);
  const wStd = o.wInitStd ?? 1;
  const W0 = Float32Array.from({ length: K * h }, () => wStd * rng.normal());
  const logSet = new Set([...(o.logSteps ?? [0]), steps].filter((s) => s >= 0 && s <= steps));
  const { bound, rW } = ceBoundCorollary2(K, rhoZ, lambda);

  const Z = tensor(Z0, [N, h], { requiresGrad: true, name: "Z" });
  const W = tensor(W0, [K, h], { requiresGrad: true, name: "W" });
  const labels = tensor(labelsHost, [N], { dtype: "i32" });
  const lrZ = (o.lrZ * N) / (o.lrZByRW ? Math.min(1, rW) : 1);
  const optZ = new SGD([Z], { lr: lrZ, momentum, weightDecay: 0 });
  const optW = new SGD([W], { lr: o.lrW, momentum, weightDecay: 2 * lambda });
  const records: CeToyRecord[] = [];
  const finalStart = Math.round(steps * (1 - finalFraction));

  const forward = (): Tensor => crossEntropy(matmul(Z, W, { transB: true }), labels);
  const readback = async (step: number, loss: Tensor): Promise<void> => {
    const [ce, z, w] = [await loss.item(), await Z.toArray(), await W.toArray()];
    const penalty = lambda * sumSquares(w);
    const zRows = toRows({ data: z, dim: h });
    const wRows = toRows({ data: w, dim: h });
    const norms = rowNorms(w, h);
    const rec: CeToyRecord = {
      step,
      ce,
      penalty,
      objective: ce + penalty,
      ceF64: ceLossF64(zRows, wRows, labelsHost),
      meanWNorm: norms.reduce((a, b) => a + b, 0) / K,
    };
    if (o.keepSnapshots) {
      rec.Z = Float32Array.from(z);
      rec.W = Float32Array.from(w);
    }
    records.push(rec);
    await o.onLog?.(rec);
  };

  try {
    for (let step = 0; step <= steps; step++) {
      // Loss at the current parameters, then (unless this is the end) one gradient step; the scope
      // frees the step's intermediates. Nothing is read back except at the log steps.
      const scope = new TensorScope();
      try {
        const loss = forward();
        if (logSet.has(step)) await readback(step, loss);
        if (step === steps) break;
        loss.backward();
        const scale = step >= finalStart ? finalLrScale : 1;
        optZ.step(lrZ * scale);
        optW.step(o.lrW * scale);
        optZ.zeroGrad();
        optW.zeroGrad();
        projectToBall(Z, rhoZ);
      } finally {
        scope.dispose();
      }
    }
    const zFinal = Float32Array.from(await Z.toArray());
    const wFinal = Float32Array.from(await W.toArray());
    return {
      Z: zFinal,
      W: wFinal,
      labels: labelsHost,
      records,
      bound,
      rW,
      geometry: toyGeometry(zFinal, labelsHost, K, h, wFinal),
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    Z.dispose();
    W.dispose();
    labels.dispose();
    optZ.dispose();
    optW.dispose();
  }
}
