/**
 * Regular simplex inscribed in a sphere (Definition 3 of the paper).
 *
 * Construction: the centred standard basis vectors e_i − (1/K)·1 of R^K lie in the
 * (K−1)-dimensional sum-zero subspace. Expressed in the orthonormal Helmert basis
 * v_j = (1, …, 1, −j, 0, …, 0)/√(j(j+1)) (j ones), j = 1..K−1, vertex i has coordinates
 * (v_1[i], …, v_{K−1}[i]) with squared norm 1 − 1/K. These coordinates are scaled to the
 * requested radius and embedded in R^h by zero padding.
 *
 * @module
 */

/**
 * Vertices of a regular simplex with K vertices inscribed in the sphere of radius `radius`
 * in R^h: Σ ζ_i = 0, ‖ζ_i‖ = radius, ⟨ζ_i, ζ_j⟩ = −radius²/(K−1) for i ≠ j.
 *
 * @param K number of vertices, 2 ≤ K ≤ h + 1
 * @param h ambient dimension (integer ≥ 1)
 * @param radius sphere radius ρ > 0 (default 1)
 * @returns K rows of length h
 * @throws RangeError when K < 2, K > h + 1, or the arguments are not valid
 */
export function regularSimplex(K: number, h: number, radius = 1): number[][] {
  if (!Number.isInteger(K) || K < 2) {
    throw new RangeError(`regularSimplex: K must be an integer >= 2 (got K=${K})`);
  }
  if (!Number.isInteger(h) || h < 1) {
    throw new RangeError(`regularSimplex: h must be an integer >= 1 (got h=${h})`);
  }
  if (K > h + 1) {
    throw new RangeError(
      `regularSimplex: a regular simplex with K=${K} vertices needs h >= K-1, but h=${h} (K > h+1)`,
    );
  }
  if (!Number.isFinite(radius) || radius <= 0) {
    throw new RangeError(`regularSimplex: radius must be finite and > 0 (got ${radius})`);
  }
  const scale = radius / Math.sqrt(1 - 1 / K);
  const rows: number[][] = [];
  for (let i = 0; i < K; i++) rows.push(new Array<number>(h).fill(0));
  for (let j = 1; j <= K - 1; j++) {
    const c = scale / Math.sqrt(j * (j + 1));
    // Helmert column j: rows 0..j-1 get +c, row j gets −j·c, later rows 0.
    for (let i = 0; i < j; i++) rows[i][j - 1] = c;
    rows[j][j - 1] = -j * c;
  }
  return rows;
}

/**
 * Inner product ⟨ζ_i, ζ_j⟩ = −ρ²/(K−1) between two distinct vertices of a regular simplex
 * with K vertices on the sphere of radius ρ.
 *
 * @param K number of vertices (≥ 2)
 * @param rho sphere radius ρ
 * @returns −ρ²/(K−1)
 */
export function simplexInnerProduct(K: number, rho: number): number {
  if (!Number.isInteger(K) || K < 2) {
    throw new RangeError(`simplexInnerProduct: K must be an integer >= 2 (got K=${K})`);
  }
  return -(rho * rho) / (K - 1);
}

/** Measured invariants of a vertex set, as returned by {@link simplexInvariants}. */
export interface SimplexInvariants {
  /** Number of vertices. */
  K: number;
  /** Ambient dimension. */
  h: number;
  /** Largest absolute coordinate of Σ ζ_i (0 for an exact simplex). */
  maxAbsSum: number;
  /** Smallest vertex norm. */
  minNorm: number;
  /** Largest vertex norm. */
  maxNorm: number;
  /** Smallest inner product between distinct vertices. */
  minInner: number;
  /** Largest inner product between distinct vertices. */
  maxInner: number;
}

/**
 * Measures the Definition 3 invariants (sum, norms, pairwise inner products) of a set of rows.
 *
 * @param rows vertices, all of the same length
 * @returns the measured invariants
 */
export function simplexInvariants(rows: ReadonlyArray<ArrayLike<number>>): SimplexInvariants {
  const K = rows.length;
  const h = K > 0 ? rows[0].length : 0;
  let maxAbsSum = 0;
  for (let d = 0; d < h; d++) {
    let s = 0;
    for (let i = 0; i < K; i++) s += rows[i][d];
    maxAbsSum = Math.max(maxAbsSum, Math.abs(s));
  }
  let minNorm = Infinity, maxNorm = -Infinity, minInner = Infinity, maxInner = -Infinity;
  for (let i = 0; i < K; i++) {
    for (let j = i; j < K; j++) {
      let s = 0;
      for (let d = 0; d < h; d++) s += rows[i][d] * rows[j][d];
      if (i === j) {
        const n = Math.sqrt(s);
        minNorm = Math.min(minNorm, n);
        maxNorm = Math.max(maxNorm, n);
      } else {
        minInner = Math.min(minInner, s);
        maxInner = Math.max(maxInner, s);
      }
    }
  }
  return { K, h, maxAbsSum, minNorm, maxNorm, minInner, maxInner };
}
