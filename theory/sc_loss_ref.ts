/**
 * Float64 brute-force supervised contrastive loss (Definition 2, Eq. 6), the CPU reference for
 * the GPU kernel:
 *
 *   ℓ_SC(Z; Y, B) = Σ_{i∈B} −1/(|B_{y_i}|−1) · Σ_{j ∈ B_{y_i} ∖ {{i}}}
 *                     log( exp⟨z_i, z_j⟩ / Σ_{k ∈ B ∖ {{i}}} exp⟨z_i, z_k⟩ )
 *
 * - a sum over the b anchor occurrences (not a mean);
 * - `∖ {{i}}` removes one occurrence: duplicates of an index are positives of each other;
 * - an anchor whose class occurs once in B contributes 0 (0/0 = 0);
 * - the denominator is a masked log-sum-exp over the occurrences k ≠ i (never full sum minus
 *   the self term), so for anchor occurrence p with positives P(p):
 *   loss_p = LSE_{q≠p} s_pq − (1/|P(p)|) Σ_{q∈P(p)} s_pq,  s_pq = ⟨u_p, u_q⟩.
 *
 * The points are used as given (no normalisation): pass points on the sphere of radius ρ_Z.
 *
 * @module
 */

import { type MatrixLike, toRows } from "./matrix.ts";

/** Result of {@link scLossOccurrencesF64}. */
export interface ScLossOccurrencesResult {
  /** ℓ_SC: the sum of perAnchor. */
  loss: number;
  /** Contribution of each anchor occurrence (0 when its class occurs once). */
  perAnchor: Float64Array;
  /** ∂ℓ_SC/∂u_p for each occurrence row p (b rows of length h), when requested. */
  grad?: Float64Array[];
}

/**
 * SC loss of one batch given per-occurrence embedding rows u_1..u_b and their labels
 * (an index that occurs twice in the batch appears as two rows). Optionally returns the
 * gradient with respect to each occurrence row:
 * ∂ℓ/∂u_p = Σ_{q≠p} (G_pq + G_qp) u_q, G_pq = softmax_{q≠p}(s_p·)_q − [q ∈ P(p)]/|P(p)|
 * (G_p· = 0 for anchors without positives).
 *
 * @param U b occurrence rows (array of vectors or flat buffer with row length)
 * @param occLabels b labels
 * @param opts `grad: true` to also compute the gradient
 * @returns loss, per-anchor contributions and optionally the gradient
 */
export function scLossOccurrencesF64(
  U: MatrixLike,
  occLabels: ArrayLike<number>,
  opts: { grad?: boolean } = {},
): ScLossOccurrencesResult {
  const rows = toRows(U);
  const b = rows.length;
  if (occLabels.length !== b) {
    throw new RangeError(`scLossOccurrencesF64: ${occLabels.length} labels for ${b} rows`);
  }
  const h = b > 0 ? rows[0].length : 0;
  const S = new Float64Array(b * b);
  for (let p = 0; p < b; p++) {
    for (let q = p; q < b; q++) {
      let s = 0;
      const up = rows[p], uq = rows[q];
      for (let d = 0; d < h; d++) s += up[d] * uq[d];
      S[p * b + q] = s;
      S[q * b + p] = s;
    }
  }
  const perAnchor = new Float64Array(b);
  const G = opts.grad ? new Float64Array(b * b) : null;
  let loss = 0;
  for (let p = 0; p < b; p++) {
    let P = 0;
    for (let q = 0; q < b; q++) if (q !== p && occLabels[q] === occLabels[p]) P++;
    if (P === 0) continue;
    let m = -Infinity;
    for (let q = 0; q < b; q++) if (q !== p && S[p * b + q] > m) m = S[p * b + q];
    let z = 0;
    for (let q = 0; q < b; q++) if (q !== p) z += Math.exp(S[p * b + q] - m);
    const lse = m + Math.log(z);
    let pos = 0;
    for (let q = 0; q < b; q++) if (q !== p && occLabels[q] === occLabels[p]) pos += S[p * b + q];
    const lp = lse - pos / P;
    perAnchor[p] = lp;
    loss += lp;
    if (G) {
      for (let q = 0; q < b; q++) {
        if (q === p) continue;
        G[p * b + q] = Math.exp(S[p * b + q] - lse) - (occLabels[q] === occLabels[p] ? 1 / P : 0);
      }
    }
  }
  const out: ScLossOccurrencesResult = { loss, perAnchor };
  if (G) {
    const grad = Array.from({ length: b }, () => new Float64Array(h));
    for (let p = 0; p < b; p++) {
      const gp = grad[p];
      for (let q = 0; q < b; q++) {
        if (q === p) continue;
        const c = G[p * b + q] + G[q * b + p];
        if (c === 0) continue;
        const uq = rows[q];
        for (let d = 0; d < h; d++) gp[d] += c * uq[d];
      }
    }
    out.grad = grad;
  }
  return out;
}

/**
 * SC loss ℓ_SC(Z; Y, B) of one batch (Eq. 6, sum over anchors, multiset semantics).
 *
 * @param Z the N points (rows; used as given, i.e. already on the sphere of radius ρ_Z)
 * @param labels the N labels
 * @param batchIndices the b indices of the batch (repeats allowed)
 * @returns the batch loss
 */
export function scLossBatchF64(
  Z: MatrixLike,
  labels: ArrayLike<number>,
  batchIndices: ArrayLike<number>,
): number {
  const rows = toRows(Z);
  const U: ArrayLike<number>[] = [];
  const yl: number[] = [];
  for (let t = 0; t < batchIndices.length; t++) {
    const i = batchIndices[t];
    if (!Number.isInteger(i) || i < 0 || i >= rows.length) {
      throw new RangeError(`scLossBatchF64: batch index ${i} out of range 0..${rows.length - 1}`);
    }
    U.push(rows[i]);
    yl.push(labels[i]);
  }
  return scLossOccurrencesF64(U, yl).loss;
}

/**
 * Calls `cb` with every multiset of size b from [N], as a non-decreasing index array (the
 * array is reused between calls: copy it to keep it). There are C(N+b−1, b) of them.
 *
 * @param N number of items
 * @param b multiset size
 * @param cb callback
 */
export function forEachMultiset(N: number, b: number, cb: (indices: Int32Array) => void): void {
  if (!Number.isInteger(N) || N < 1 || !Number.isInteger(b) || b < 0) {
    throw new RangeError(`forEachMultiset: need integers N >= 1, b >= 0 (got N=${N}, b=${b})`);
  }
  const idx = new Int32Array(b);
  while (true) {
    cb(idx);
    let t = b - 1;
    while (t >= 0 && idx[t] === N - 1) t--;
    if (t < 0) return;
    const v = idx[t] + 1;
    for (let u = t; u < b; u++) idx[u] = v;
  }
}

/**
 * L_SC(Z; Y) by enumerating all C(N+b−1, b) multisets (only for tiny N, b), with the mean over
 * multisets, every multiset weighted equally.
 *
 * @param Z the N points
 * @param labels the N labels
 * @param b batch size
 * @returns total, mean and number of multisets
 */
export function scLossAllMultisetsF64(
  Z: MatrixLike,
  labels: ArrayLike<number>,
  b: number,
): { total: number; mean: number; count: number } {
  const rows = toRows(Z);
  let total = 0, count = 0;
  forEachMultiset(rows.length, b, (idx) => {
    total += scLossBatchF64(rows, labels, idx);
    count++;
  });
  return { total, mean: total / count, count };
}
