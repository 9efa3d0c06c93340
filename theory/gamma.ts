/**
 * The geometry statistic of Eq. 7: γ(x, y) = 1 − angle(x, y)/π ∈ [0, 1], with the angle
 * evaluated as 2·atan2(‖x̂ − ŷ‖, ‖x̂ + ŷ‖) (x̂ = x/‖x‖), which stays accurate for nearly
 * parallel (γ ≈ 1) and nearly antiparallel vectors, unlike arccos of the cosine.
 *
 * @module
 */

import { type MatrixLike, toRows } from "./matrix.ts";

function norm(x: ArrayLike<number>): number {
  // Scaled to avoid overflow/underflow for extreme magnitudes.
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  if (m === 0 || !Number.isFinite(m)) return m;
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const t = x[i] / m;
    s += t * t;
  }
  return m * Math.sqrt(s);
}

/**
 * Angle between two non-zero vectors in [0, π], as 2·atan2(‖x̂ − ŷ‖, ‖x̂ + ŷ‖).
 *
 * @param x first vector
 * @param y second vector (same length)
 * @returns the angle in radians
 * @throws RangeError for a length mismatch or a zero vector
 */
export function angleBetween(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) {
    throw new RangeError(`angleBetween: lengths differ (${x.length} vs ${y.length})`);
  }
  const nx = norm(x), ny = norm(y);
  if (!(nx > 0) || !(ny > 0)) throw new RangeError("angleBetween: zero (or non-finite) vector");
  let d = 0, s = 0;
  for (let i = 0; i < x.length; i++) {
    const a = x[i] / nx, b = y[i] / ny;
    d += (a - b) * (a - b);
    s += (a + b) * (a + b);
  }
  return 2 * Math.atan2(Math.sqrt(d), Math.sqrt(s));
}

/**
 * γ(x, y) = 1 − angle(x, y)/π (Eq. 7).
 *
 * @param x first vector
 * @param y second vector
 * @returns γ in [0, 1]
 */
export function gamma(x: ArrayLike<number>, y: ArrayLike<number>): number {
  return 1 - angleBetween(x, y) / Math.PI;
}

/**
 * γ between two distinct vertices of a regular simplex with K vertices:
 * 1 − arccos(−1/(K−1))/π.
 *
 * @param K number of vertices (≥ 2)
 * @returns the simplex γ
 */
export function gammaSimplex(K: number): number {
  if (!Number.isInteger(K) || K < 2) {
    throw new RangeError(`gammaSimplex: K must be an integer >= 2 (got K=${K})`);
  }
  return 1 - Math.acos(-1 / (K - 1)) / Math.PI;
}

/**
 * Class means µ_y = mean of the rows with label y.
 *
 * @param Z rows (array of vectors or flat buffer with row length)
 * @param labels one label in 0..K−1 per row
 * @param K number of classes (default: max label + 1)
 * @returns K mean vectors (float64)
 * @throws RangeError when a class has no rows or a label is out of range
 */
export function classMeans(Z: MatrixLike, labels: ArrayLike<number>, K?: number): Float64Array[] {
  const rows = toRows(Z);
  if (labels.length !== rows.length) {
    throw new RangeError(`classMeans: ${labels.length} labels for ${rows.length} rows`);
  }
  let k = K ?? 0;
  if (K === undefined) { for (let i = 0; i < labels.length; i++) k = Math.max(k, labels[i] + 1); }
  const h = rows.length > 0 ? rows[0].length : 0;
  const sums = Array.from({ length: k }, () => new Float64Array(h));
  const counts = new Float64Array(k);
  for (let i = 0; i < rows.length; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= k) {
      throw new RangeError(`classMeans: label ${y} out of range 0..${k - 1}`);
    }
    counts[y]++;
    const r = rows[i], s = sums[y];
    for (let d = 0; d < h; d++) s[d] += r[d];
  }
  for (let y = 0; y < k; y++) {
    if (counts[y] === 0) throw new RangeError(`classMeans: class ${y} has no rows`);
    for (let d = 0; d < h; d++) sums[y][d] /= counts[y];
  }
  return sums;
}

/**
 * γ between all pairs of distinct rows, i < j in row-major pair order
 * (e.g. across class means or classifier weights).
 *
 * @param rows the vectors
 * @returns K(K−1)/2 values
 */
export function pairwiseGamma(rows: MatrixLike): Float64Array {
  const r = toRows(rows);
  const out = new Float64Array((r.length * (r.length - 1)) / 2);
  let p = 0;
  for (let i = 0; i < r.length; i++) for (let j = i + 1; j < r.length; j++) out[p++] = gamma(r[i], r[j]);
  return out;
}

/**
 * γ of each row to the mean of its class (the within-class collapse statistic).
 *
 * @param Z rows
 * @param labels one label per row
 * @param means class means (default: {@link classMeans} of Z)
 * @returns one value per row
 */
export function gammaToClassMeans(
  Z: MatrixLike,
  labels: ArrayLike<number>,
  means?: ReadonlyArray<ArrayLike<number>>,
): Float64Array {
  const rows = toRows(Z);
  const mu = means ?? classMeans(rows, labels);
  const out = new Float64Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = gamma(rows[i], mu[labels[i]]);
  return out;
}
