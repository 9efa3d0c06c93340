/**
 * Float64 CPU reference of 2-D batch normalisation (PyTorch semantics), forward and analytic backward.
 */

/** Result of the training-mode reference. */
export interface BnTrainRef {
  y: Float64Array;
  mean: Float64Array;
  /** Biased batch variance. */
  variance: Float64Array;
  /** Running buffers after the update. */
  runningMean: Float64Array;
  runningVar: Float64Array;
}

/** Training-mode batch norm of x [N, C, S] (S = H·W), optionally followed by ReLU. */
export function batchNormTrainRef(
  x: ArrayLike<number>,
  n: number,
  c: number,
  s: number,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  runningMean: ArrayLike<number>,
  runningVar: ArrayLike<number>,
  momentum = 0.1,
  eps = 1e-5,
  relu = false,
): BnTrainRef {
  const count = n * s;
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    let total = 0;
    for (let b = 0; b < n; b++) for (let e = 0; e < s; e++) total += x[(b * c + ch) * s + e];
    const m = total / count;
    let m2 = 0;
    for (let b = 0; b < n; b++) for (let e = 0; e < s; e++) m2 += (x[(b * c + ch) * s + e] - m) ** 2;
    mean[ch] = m;
    variance[ch] = m2 / count;
  }
  const y = normalizeRef(x, n, c, s, gamma, beta, mean, variance, eps, relu);
  const rm = Float64Array.from(runningMean, (r, ch) => (1 - momentum) * r + momentum * mean[ch]);
  const rv = Float64Array.from(
    runningVar,
    (r, ch) => (1 - momentum) * r + momentum * variance[ch] * count / (count - 1),
  );
  return { y, mean, variance, runningMean: rm, runningVar: rv };
}

/** `γ·(x − mean)/√(var + ε) + β` per channel (evaluation mode with the running statistics). */
export function normalizeRef(
  x: ArrayLike<number>,
  n: number,
  c: number,
  s: number,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  mean: ArrayLike<number>,
  variance: ArrayLike<number>,
  eps = 1e-5,
  relu = false,
): Float64Array {
  const y = new Float64Array(n * c * s);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const inv = 1 / Math.sqrt(variance[ch] + eps);
      for (let e = 0; e < s; e++) {
        const i = (b * c + ch) * s + e;
        const v = gamma[ch] * (x[i] - mean[ch]) * inv + beta[ch];
        y[i] = relu ? Math.max(v, 0) : v;
      }
    }
  }
  return y;
}

/** Analytic float64 gradients of training-mode batch norm (no ReLU) for an output gradient `dy`. */
export function batchNormTrainBackwardRef(
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  n: number,
  c: number,
  s: number,
  gamma: ArrayLike<number>,
  eps = 1e-5,
): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const count = n * s;
  const dx = new Float64Array(n * c * s);
  const dgamma = new Float64Array(c);
  const dbeta = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    const idx: number[] = [];
    for (let b = 0; b < n; b++) for (let e = 0; e < s; e++) idx.push((b * c + ch) * s + e);
    const mean = idx.reduce((p, i) => p + x[i], 0) / count;
    const variance = idx.reduce((p, i) => p + (x[i] - mean) ** 2, 0) / count;
    const inv = 1 / Math.sqrt(variance + eps);
    let sdy = 0;
    let sdyx = 0;
    for (const i of idx) {
      sdy += dy[i];
      sdyx += dy[i] * (x[i] - mean) * inv;
    }
    dgamma[ch] = sdyx;
    dbeta[ch] = sdy;
    for (const i of idx) {
      const xhat = (x[i] - mean) * inv;
      dx[i] = gamma[ch] * inv * (dy[i] - sdy / count - xhat * sdyx / count);
    }
  }
  return { dx, dgamma, dbeta };
}
