/**
 * Theorem 2: the lower bound of the supervised contrastive loss summed over all batches
 * (multisets of size b drawn from N balanced labelled points on the sphere of radius ρ_Z):
 *
 *   L_SC(Z; Y) ≥ Σ_{l=2}^{b} l · M_l · log(l − 1 + (b − l) · e^{−Kρ_Z²/(K−1)}),
 *   M_l = K · C(n+l−1, l) · C(N−n+b−l−1, b−l),  n = N/K,  |𝔅| = C(N+b−1, b).
 *
 * Why: at the simplex (C1, C2) ⟨z_i, z_j⟩ = ρ² within a class and −ρ²/(K−1) across classes, so
 * an anchor whose class occurs c ≥ 2 times in a batch of size b contributes
 * −log(e^{ρ²}/((c−1)e^{ρ²} + (b−c)e^{−ρ²/(K−1)})) = log(c − 1 + (b − c)e^{−Kρ²/(K−1)}), and
 * M_l counts the pairs (batch, class) with exactly l occurrences of the class. The bound is
 * attained with equality there, so it is the sum over 𝔅 of {@link scLossAtSimplex}.
 *
 * Combinatorics are exact (BigInt) when |𝔅| is moderate and in log space otherwise. The log
 * space path never needs a log-gamma: log C(n+m−1, m) = Σ_{i=1}^{m} log1p((n−1)/i) is summed
 * with Neumaier compensation for m = 0..b, which is O(b) and accurate to a few ulps per term.
 *
 * @module
 */

/** Parameters of Theorem 2. */
export interface ScBoundParams {
  /** Number of points (a multiple of K: balanced labels). */
  N: number;
  /** Number of classes (≥ 2). */
  K: number;
  /** Batch size (≥ 2). */
  b: number;
  /** Squared radius ρ_Z² > 0 (= 1/τ). */
  rho2: number;
  /** "exact" (BigInt), "log" (log space), or "auto" (exact when |𝔅| < 2^1000; default). */
  method?: "auto" | "exact" | "log";
}

/** One l-term of Theorem 2. */
export interface ScBoundTerm {
  /** Occurrences l of a class in a batch (2..b). */
  l: number;
  /** log M_l. */
  logM: number;
  /** M_l exactly (only with the exact method). */
  M?: bigint;
  /** M_l / |𝔅|. */
  weight: number;
  /** log(l − 1 + (b − l)e^{−Kρ²/(K−1)}): the per-anchor loss at the simplex. */
  value: number;
}

/** Result of {@link scBound}. */
export interface ScBoundResult {
  /** Number of points. */
  N: number;
  /** Number of classes. */
  K: number;
  /** Batch size. */
  b: number;
  /** ρ_Z². */
  rho2: number;
  /** Method actually used. */
  method: "exact" | "log";
  /** Bound divided by |𝔅|: the mean per multiset (what the paper reports). */
  mean: number;
  /** log of the bound on L_SC (sum over 𝔅); −Infinity when the bound is 0 (b = 2). */
  logTotal: number;
  /** The bound on L_SC as a double (Infinity when it overflows; use logTotal). */
  total: number;
  /** |𝔅| = C(N+b−1, b) exactly (exact method only, else null). */
  numBatches: bigint | null;
  /** log |𝔅|. */
  logNumBatches: number;
  /** The terms l = 2..b. */
  terms: ScBoundTerm[];
}

/** Validates (N, K, b, rho2) for the balanced-label theorems; throws RangeError naming the problem. */
export function validateScParams(
  p: { N: number; K: number; b: number; rho2: number },
  who = "scBound",
): void {
  const { N, K, b, rho2 } = p;
  if (!Number.isInteger(K) || K < 2) throw new RangeError(`${who}: K must be an integer >= 2 (got K=${K})`);
  if (!Number.isInteger(N) || N < K) {
    throw new RangeError(`${who}: N must be an integer >= K (got N=${N}, K=${K})`);
  }
  if (N % K !== 0) {
    throw new RangeError(`${who}: N must be divisible by K for balanced labels (got N=${N}, K=${K})`);
  }
  if (!Number.isInteger(b) || b < 2) throw new RangeError(`${who}: b must be an integer >= 2 (got b=${b})`);
  if (!Number.isFinite(rho2) || rho2 <= 0) {
    throw new RangeError(`${who}: rho2 must be finite and > 0 (got ${rho2})`);
  }
}

/**
 * log(l − 1 + (b − l)·e^{−Kρ²/(K−1)}), the loss of one anchor at the simplex when its class
 * occurs l ≥ 2 times in a batch of size b.
 *
 * @param l occurrences of the anchor's class (2 ≤ l ≤ b)
 * @param b batch size
 * @param K number of classes
 * @param rho2 ρ²
 * @returns the per-anchor loss
 */
export function scAnchorValueAtSimplex(l: number, b: number, K: number, rho2: number): number {
  const e = Math.exp((-K * rho2) / (K - 1));
  return Math.log(l - 1) + Math.log1p(((b - l) * e) / (l - 1));
}

/**
 * Number of multisets of size m from n items, C(n+m−1, m), exactly.
 *
 * @param n number of items (≥ 0)
 * @param m multiset size (≥ 0)
 * @returns C(n+m−1, m) as a BigInt
 */
export function multichoose(n: number, m: number): bigint {
  return multichooseSeries(n, m)[m];
}

/** [C(n+j−1, j) for j = 0..m] exactly. */
function multichooseSeries(n: number, m: number): bigint[] {
  const out: bigint[] = [1n];
  let c = 1n;
  const bn = BigInt(n);
  for (let j = 1; j <= m; j++) {
    c = (c * (bn + BigInt(j - 1))) / BigInt(j);
    out.push(c);
  }
  return out;
}

/** [log C(n+j−1, j) for j = 0..m], compensated summation of log1p((n−1)/i). */
function logMultichooseSeries(n: number, m: number): Float64Array {
  const out = new Float64Array(m + 1);
  if (n === 0) {
    out.fill(-Infinity);
    out[0] = 0;
    return out;
  }
  let s = 0, comp = 0;
  for (let i = 1; i <= m; i++) {
    const t = Math.log1p((n - 1) / i);
    const u = s + t;
    comp += Math.abs(s) >= Math.abs(t) ? (s - u) + t : (t - u) + s;
    s = u;
    out[i] = s + comp;
  }
  return out;
}

/**
 * log C(n+m−1, m), the log of the number of multisets of size m from n items.
 *
 * @param n number of items (≥ 1)
 * @param m multiset size (≥ 0)
 * @returns log C(n+m−1, m)
 */
export function logMultichoose(n: number, m: number): number {
  return logMultichooseSeries(n, m)[m];
}

/**
 * Natural log of a positive BigInt, to double precision.
 *
 * @param x positive BigInt
 * @returns log x
 */
export function bigLog(x: bigint): number {
  if (x <= 0n) return x === 0n ? -Infinity : NaN;
  const bits = x.toString(2).length;
  const shift = Math.max(0, bits - 62);
  return Math.log(Number(x >> BigInt(shift))) + shift * Math.LN2;
}

/** a/b as a double for 0 ≤ a, 0 < b, correct to about one ulp (also for huge a, b). */
function bigRatio(a: bigint, b: bigint): number {
  if (a === 0n) return 0;
  const la = a.toString(2).length, lb = b.toString(2).length;
  const s = Math.max(0, lb - la + 64);
  const q = (a << BigInt(s)) / b;
  // q has ≥ 64 significant bits; scale down by 2^s in safe steps.
  let v = Number(q);
  let rem = s;
  while (rem > 0) {
    const st = Math.min(rem, 1000);
    v *= 2 ** -st;
    rem -= st;
  }
  return v;
}

/**
 * Theorem 2: the lower bound on L_SC (sum over all multisets), its mean per multiset, |𝔅| and
 * the M_l terms. Paper checks: {N: 12, K: 3, b: 9, rho2: 1} → mean 12.12015 (|𝔅| = 167960);
 * {N: 50000, K: 10, b: 256, rho2: 10} → mean 824.487.
 *
 * @param p parameters (balanced labels: N divisible by K)
 * @returns the bound
 */
export function scBound(p: ScBoundParams): ScBoundResult {
  validateScParams(p, "scBound");
  const { N, K, b, rho2 } = p;
  const n = N / K;
  const R = N - n;
  const logN = logMultichooseSeries(N, b)[b];
  const method = p.method === "exact" || p.method === "log"
    ? p.method
    : (logN < 1000 * Math.LN2 ? "exact" : "log");
  const terms: ScBoundTerm[] = [];
  let mean = 0;
  let numBatches: bigint | null = null;
  let logNumBatches = logN;
  if (method === "exact") {
    const cn = multichooseSeries(n, b);
    const cr = multichooseSeries(R, b);
    numBatches = multichooseSeries(N, b)[b];
    logNumBatches = bigLog(numBatches);
    const bK = BigInt(K);
    for (let l = 2; l <= b; l++) {
      const M = bK * cn[l] * cr[b - l];
      const weight = bigRatio(M, numBatches);
      const value = scAnchorValueAtSimplex(l, b, K, rho2);
      terms.push({ l, logM: bigLog(M), M, weight, value });
      mean += l * weight * value;
    }
  } else {
    const ln = logMultichooseSeries(n, b);
    const lr = logMultichooseSeries(R, b);
    const logK = Math.log(K);
    for (let l = 2; l <= b; l++) {
      const logM = logK + ln[l] + lr[b - l];
      const weight = Math.exp(logM - logN);
      const value = scAnchorValueAtSimplex(l, b, K, rho2);
      terms.push({ l, logM, weight, value });
      mean += l * weight * value;
    }
  }
  const logTotal = Math.log(mean) + logNumBatches;
  return {
    N,
    K,
    b,
    rho2,
    method,
    mean,
    logTotal,
    total: Math.exp(logTotal),
    numBatches,
    logNumBatches,
    terms,
  };
}

/**
 * Expected SC loss per batch at the simplex when the b indices of a batch are drawn i.i.d.
 * uniformly from [N] with replacement (the training protocol), balanced labels.
 *
 * Derivation: with ordered i.i.d. draws each draw falls in class y with probability 1/K, so the
 * class counts (c_1..c_K) are Multinomial(b; 1/K, …, 1/K) and each c_y is marginally
 * Binomial(b, 1/K). The loss of a batch at the simplex is Σ_y c_y·f(c_y) with
 * f(l) = log(l−1 + (b−l)e^{−Kρ²/(K−1)}) and terms with c_y ≤ 1 equal to 0
 * ({@link scLossAtSimplex}), so by linearity and symmetry
 *
 *   E = Σ_{l=2}^{b} l · K · P(Binomial(b, 1/K) = l) · f(l).
 *
 * This differs slightly from {@link scBound}'s mean, which weights every multiset equally
 * (multisets with repeated indices are less likely under i.i.d. draws than under uniform
 * multisets). N only enters through the balance check.
 *
 * @param p parameters (balanced labels)
 * @returns the expected per-batch loss at the simplex
 */
export function scBoundIidExpectation(p: { N: number; K: number; b: number; rho2: number }): number {
  validateScParams(p, "scBoundIidExpectation");
  const { K, b, rho2 } = p;
  const lp = -Math.log(K), lq = Math.log1p(-1 / K);
  let logC = 0; // log C(b, l)
  let s = 0;
  for (let l = 1; l <= b; l++) {
    logC += Math.log((b - l + 1) / l);
    if (l < 2) continue;
    const pmf = Math.exp(logC + l * lp + (b - l) * lq);
    s += l * K * pmf * scAnchorValueAtSimplex(l, b, K, rho2);
  }
  return s;
}

/**
 * Exact SC batch loss (Eq. 6, sum over anchors) at a regular simplex configuration of radius ρ,
 * for a batch with per-class occurrence counts `counts`:
 * Σ_{y: c_y ≥ 2} c_y · log(c_y − 1 + (b − c_y)·e^{−Kρ²/(K−1)}), b = Σ_y c_y.
 *
 * @param counts occurrences of each class in the batch (non-negative integers)
 * @param rho2 ρ² > 0
 * @param K number of classes of the simplex (default counts.length; must be ≥ 2)
 * @returns the batch loss
 */
export function scLossAtSimplex(counts: ArrayLike<number>, rho2: number, K: number = counts.length): number {
  if (!Number.isInteger(K) || K < 2) {
    throw new RangeError(`scLossAtSimplex: K must be an integer >= 2 (got ${K})`);
  }
  if (counts.length > K) throw new RangeError(`scLossAtSimplex: ${counts.length} counts for K=${K} classes`);
  let b = 0;
  for (let y = 0; y < counts.length; y++) {
    const c = counts[y];
    if (!Number.isInteger(c) || c < 0) throw new RangeError(`scLossAtSimplex: bad count ${c}`);
    b += c;
  }
  let s = 0;
  for (let y = 0; y < counts.length; y++) {
    const c = counts[y];
    if (c >= 2) s += c * scAnchorValueAtSimplex(c, b, K, rho2);
  }
  return s;
}
