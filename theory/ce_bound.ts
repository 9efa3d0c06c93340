/**
 * Cross-entropy lower bounds: Theorem 1, Corollary 1 and Corollary 2 of the paper
 * (balanced labels, ‖z_n‖ ≤ ρ_Z, bias-free linear classifier W ∈ R^{K×h}).
 *
 * All bounds have the form log(1 + (K−1)·e^{−t}), evaluated as log1p((K−1)·e^{−t}), which is
 * accurate for large t (the value is then ≈ (K−1)e^{−t}, far below 1).
 *
 * @module
 */

function checkK(K: number, who: string): void {
  if (!Number.isInteger(K) || K < 2) throw new RangeError(`${who}: K must be an integer >= 2 (got K=${K})`);
}
function checkPos(x: number, name: string, who: string): void {
  if (!Number.isFinite(x) || x <= 0) {
    throw new RangeError(`${who}: ${name} must be finite and > 0 (got ${x})`);
  }
}
function checkNonNeg(x: number, name: string, who: string): void {
  if (!Number.isFinite(x) || x < 0) {
    throw new RangeError(`${who}: ${name} must be finite and >= 0 (got ${x})`);
  }
}

/**
 * log(1 + (K−1)·e^{−t}) for t ≥ 0, computed stably.
 *
 * @param K number of classes
 * @param t exponent (t ≥ 0 in all uses here)
 * @returns log(1 + (K−1)e^{−t})
 */
export function log1pKm1ExpNeg(K: number, t: number): number {
  if (t >= 0) return Math.log1p((K - 1) * Math.exp(-t));
  // t < 0: factor out e^{−t} to avoid overflow.
  return -t + Math.log(Math.exp(t) + (K - 1));
}

/**
 * Theorem 1: L_CE(Z, W; Y) ≥ log(1 + (K−1)·exp(−ρ_Z·√K·‖W‖_F/(K−1))).
 *
 * @param K number of classes (≥ 2)
 * @param rhoZ bound ρ_Z > 0 on the norms of the points
 * @param frobW Frobenius norm ‖W‖_F ≥ 0 of the classifier
 * @returns the lower bound
 */
export function ceBoundTheorem1(K: number, rhoZ: number, frobW: number): number {
  checkK(K, "ceBoundTheorem1");
  checkPos(rhoZ, "rhoZ", "ceBoundTheorem1");
  checkNonNeg(frobW, "frobW", "ceBoundTheorem1");
  return log1pKm1ExpNeg(K, (rhoZ * Math.sqrt(K) * frobW) / (K - 1));
}

/**
 * Corollary 1 (rows ‖w_y‖ ≤ r_W): L_CE ≥ log(1 + (K−1)·exp(−K·ρ_Z·r_W/(K−1))).
 *
 * @param K number of classes (≥ 2)
 * @param rhoZ bound ρ_Z > 0 on the norms of the points
 * @param rW bound r_W ≥ 0 on the norms of the classifier rows
 * @returns the lower bound
 */
export function ceBoundCorollary1(K: number, rhoZ: number, rW: number): number {
  checkK(K, "ceBoundCorollary1");
  checkPos(rhoZ, "rhoZ", "ceBoundCorollary1");
  checkNonNeg(rW, "rW", "ceBoundCorollary1");
  return log1pKm1ExpNeg(K, (K * rhoZ * rW) / (K - 1));
}

/**
 * The Corollary 2 objective bound as a function of the common row norm x:
 * g(x) = log(1 + (K−1)e^{−a x}) + λ K x², a = K ρ_Z/(K−1). Convex in x; its minimiser is
 * {@link rW}.
 *
 * @param K number of classes (≥ 2)
 * @param rhoZ ρ_Z > 0
 * @param lambda λ ≥ 0 (coefficient of ‖W‖_F²)
 * @param x row norm x ≥ 0
 * @returns g(x)
 */
export function ceCorollary2Objective(K: number, rhoZ: number, lambda: number, x: number): number {
  const a = (K * rhoZ) / (K - 1);
  return log1pKm1ExpNeg(K, a * x) + lambda * K * x * x;
}

/**
 * Corollary 2's weight norm r_W(ρ_Z, λ): the unique root x > 0 of
 * 2λx = ρ_Z / (exp(K ρ_Z x/(K−1)) + K − 1).
 *
 * Solved in u = log x on the equivalent, overflow-free equation
 * ψ(u) = log(2λ/ρ_Z) + u + a·e^u + log1p((K−1)·e^{−a e^u}) = 0 (a = Kρ_Z/(K−1)),
 * which is strictly increasing in u, by Newton's method safeguarded with bisection inside a
 * bracket. The upper end u = log(ρ_Z/(2λK)) always satisfies ψ ≥ 0. Converges to full double
 * precision for any λ > 0 whose root is a normal double.
 *
 * @param K number of classes (≥ 2)
 * @param rhoZ ρ_Z > 0
 * @param lambda λ > 0
 * @returns r_W > 0
 */
export function rW(K: number, rhoZ: number, lambda: number): number {
  checkK(K, "rW");
  checkPos(rhoZ, "rhoZ", "rW");
  checkPos(lambda, "lambda", "rW");
  const a = (K * rhoZ) / (K - 1);
  const c = Math.log(2 * lambda) - Math.log(rhoZ);
  const psi = (u: number): number => {
    const ax = a * Math.exp(u);
    return c + u + ax + Math.log1p((K - 1) * Math.exp(-ax));
  };
  const dpsi = (u: number): number => {
    const ax = a * Math.exp(u);
    return 1 + ax / (1 + (K - 1) * Math.exp(-ax));
  };
  let hi = Math.log(rhoZ) - Math.log(2 * lambda * K);
  let fhi = psi(hi);
  if (fhi === 0) return Math.exp(hi);
  let step = 1;
  let lo = hi - step;
  let flo = psi(lo);
  while (flo > 0) {
    hi = lo;
    fhi = flo;
    step *= 2;
    lo = hi - step;
    flo = psi(lo);
    if (!Number.isFinite(lo)) throw new Error("rW: failed to bracket the root");
  }
  if (flo === 0) return Math.exp(lo);
  // Newton from the midpoint, bisection whenever Newton leaves the bracket or stalls.
  let u = 0.5 * (lo + hi);
  for (let iter = 0; iter < 400; iter++) {
    const f = psi(u);
    if (f === 0) break;
    if (f < 0) lo = u;
    else hi = u;
    let next = u - f / dpsi(u);
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    const done = Math.abs(next - u) <= 1e-17 * Math.max(1, Math.abs(u)) || next === lo || next === hi;
    u = next;
    if (done || hi - lo <= 4 * Number.EPSILON * Math.max(1, Math.abs(u))) break;
  }
  return polishRW(Math.exp(u), K, rhoZ, lambda, a);
}

/**
 * Two Newton steps on F(x) = 2λx(e^{ax} + K − 1)/ρ − 1 directly in x, which avoids the
 * cancellation of the O(|log λ|) terms in ψ. Only used where e^{ax} cannot overflow; a step is
 * kept only if it reduces |F|.
 */
function polishRW(x: number, K: number, rhoZ: number, lambda: number, a: number): number {
  const F = (v: number): number => ((2 * lambda * v) / rhoZ) * (Math.exp(a * v) + K - 1) - 1;
  for (let i = 0; i < 2; i++) {
    if (!(a * x < 700)) return x;
    const e = Math.exp(a * x);
    const f = F(x);
    const df = ((2 * lambda) / rhoZ) * (e + K - 1 + a * x * e);
    const next = x - f / df;
    if (!(next > 0) || Math.abs(F(next)) >= Math.abs(f)) return x;
    x = next;
  }
  return x;
}

/** Result of {@link ceBoundCorollary2}. */
export interface CeCorollary2Result {
  /** The lower bound on L_CE + λ‖W‖_F²: g(r_W). */
  bound: number;
  /** Optimal common row norm r_W(ρ_Z, λ). */
  rW: number;
}

/**
 * Corollary 2 (objective L_CE + λ‖W‖_F²): the bound log(1 + (K−1)e^{−a r_W}) + λ K r_W²,
 * a = Kρ_Z/(K−1), with r_W = {@link rW}(K, ρ_Z, λ).
 *
 * @param K number of classes (≥ 2)
 * @param rhoZ ρ_Z > 0
 * @param lambda λ > 0
 * @returns the bound and r_W
 */
export function ceBoundCorollary2(K: number, rhoZ: number, lambda: number): CeCorollary2Result {
  const r = rW(K, rhoZ, lambda);
  return { bound: ceCorollary2Objective(K, rhoZ, lambda, r), rW: r };
}

/**
 * Converts an optimiser's weight decay (PyTorch convention: gradient += wd·θ) to the λ of the
 * penalty λ‖W‖_F²: λ = wd/2.
 *
 * @param wd weight decay > 0
 * @returns λ = wd/2
 */
export function lambdaFromWeightDecay(wd: number): number {
  checkPos(wd, "wd", "lambdaFromWeightDecay");
  return wd / 2;
}

/**
 * Reference float64 cross-entropy (Definition 1): (1/N) Σ_n −log softmax(W z_n)_{y_n}.
 * Each term is evaluated as (m − ℓ_y) + log Σ_k e^{ℓ_k − m} (m = max logit), with log1p when
 * the true class attains the maximum, so tiny losses keep full relative accuracy.
 *
 * @param Z points, N rows of length h
 * @param W classifier, K rows of length h
 * @param labels N labels in 0..K−1
 * @returns the mean loss
 */
export function ceLossF64(
  Z: ReadonlyArray<ArrayLike<number>>,
  W: ReadonlyArray<ArrayLike<number>>,
  labels: ArrayLike<number>,
): number {
  const N = Z.length, K = W.length;
  if (labels.length !== N) throw new RangeError(`ceLossF64: ${labels.length} labels for ${N} points`);
  const logits = new Float64Array(K);
  let total = 0;
  for (let n = 0; n < N; n++) {
    const z = Z[n];
    let m = -Infinity;
    for (let k = 0; k < K; k++) {
      const w = W[k];
      if (w.length !== z.length) throw new RangeError("ceLossF64: dimension mismatch");
      let s = 0;
      for (let d = 0; d < z.length; d++) s += w[d] * z[d];
      logits[k] = s;
      if (s > m) m = s;
    }
    const y = labels[n];
    if (!(y >= 0 && y < K && Number.isInteger(y))) throw new RangeError(`ceLossF64: bad label ${y}`);
    if (logits[y] === m) {
      let s = 0;
      let skipped = false;
      for (let k = 0; k < K; k++) {
        if (k === y && !skipped) {
          skipped = true;
          continue;
        }
        s += Math.exp(logits[k] - m);
      }
      total += Math.log1p(s);
    } else {
      let s = 0;
      for (let k = 0; k < K; k++) s += Math.exp(logits[k] - m);
      total += m - logits[y] + Math.log(s);
    }
  }
  return total / N;
}
