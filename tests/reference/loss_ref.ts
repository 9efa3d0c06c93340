/**
 * Float64 CPU references for the loss kernels, written literally from the definitions
 * (FORMULAS.md): sphere normalisation, cross-entropy (Definition 1), SC loss (Definition 2, Eq. 6).
 *
 * @module
 */

/** `z = ρ·u/‖u‖` for each row of `u` [rows, d] (flat, row-major). */
export function normalizeToSphereRef(
  u: ArrayLike<number>,
  rows: number,
  d: number,
  radius: number,
): Float64Array {
  const z = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let t = 0; t < d; t++) s += u[r * d + t] ** 2;
    const n = Math.sqrt(s);
    for (let t = 0; t < d; t++) z[r * d + t] = radius * u[r * d + t] / n;
  }
  return z;
}

/** Per-row `−log softmax(x_r)[y_r]` of logits [rows, k], reduced by mean or sum. */
export function crossEntropyRef(
  x: ArrayLike<number>,
  labels: ArrayLike<number>,
  rows: number,
  k: number,
  reduction: "mean" | "sum" = "mean",
): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let denom = 0;
    for (let c = 0; c < k; c++) denom += Math.exp(x[r * k + c]);
    total += -Math.log(Math.exp(x[r * k + labels[r]]) / denom);
  }
  return reduction === "mean" ? total / rows : total;
}

/**
 * Eq. 6 literally, rows as occurrences: for each anchor i, with `P_i = {j ≠ i : y_j = y_i}`,
 * `−1/|P_i| · Σ_{j∈P_i} log( exp⟨z_i,z_j⟩ / Σ_{k≠i} exp⟨z_i,z_k⟩ )` (0 when P_i is empty), summed
 * over all anchors. Also returns the per-anchor terms.
 */
export function supConLossRef(
  z: ArrayLike<number>,
  labels: ArrayLike<number>,
  b: number,
  d: number,
): { loss: number; perAnchor: Float64Array } {
  const ip = (i: number, j: number): number => {
    let s = 0;
    for (let t = 0; t < d; t++) s += z[i * d + t] * z[j * d + t];
    return s;
  };
  const perAnchor = new Float64Array(b);
  let loss = 0;
  for (let i = 0; i < b; i++) {
    const positives: number[] = [];
    for (let j = 0; j < b; j++) if (j !== i && labels[j] === labels[i]) positives.push(j);
    if (positives.length === 0) continue;
    let denom = 0;
    for (let k = 0; k < b; k++) if (k !== i) denom += Math.exp(ip(i, k));
    let s = 0;
    for (const j of positives) s += Math.log(Math.exp(ip(i, j)) / denom);
    perAnchor[i] = -s / positives.length;
    loss += perAnchor[i];
  }
  return { loss, perAnchor };
}
