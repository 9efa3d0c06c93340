/**
 * The Fig. 7 geometry statistics of Section 5.2 on a feature set read back from the GPU (float64,
 * on the host; theory/gamma.ts evaluates γ with the atan2 form, so values near 1 stay resolved):
 *
 * 1. γ(µ_i, µ_j) across the class means, i < j (class separation; a regular simplex gives
 *    {@link gammaSimplex}(K));
 * 2. γ(w_i, w_j) across the rows of the classifier (CE: trained, CE-fix: the fixed simplex, SC: the
 *    linear probe when there is one);
 * 3. γ(z_n, µ_{y_n}) of every representation to the mean of its class (within-class spread; 1 at
 *    collapse).
 *
 * Plus summary statistics (mean, median, quartiles, extremes), the measured ρ_Z = max ‖z_n‖, the
 * training error of a linear head, and the three-panel histogram figure with the simplex values as
 * red rules.
 * @module
 */
import { gamma, gammaSimplex } from "../../theory/gamma.ts";
import { hconcat, histogram, type Marker, type VegaLiteSpec } from "../lib/plot.ts";

/** Summary statistics of a sample. */
export interface SummaryStats {
  /** Number of (finite) values. */
  n: number;
  /** Mean. */
  mean: number;
  /** Population standard deviation. */
  std: number;
  /** Minimum. */
  min: number;
  /** First quartile (linear interpolation between order statistics, as numpy's default). */
  q1: number;
  /** Median. */
  median: number;
  /** Third quartile. */
  q3: number;
  /** Maximum. */
  max: number;
}

/** Quantile `q` ∈ [0, 1] of ascending `sorted` values (numpy's default "linear" method). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = Math.min(Math.max(q, 0), 1) * (n - 1);
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * Mean, std, min, quartiles and max of the finite values of `values` (NaN everywhere for an empty
 * sample). Non-finite values are dropped.
 */
export function summaryStats(values: ArrayLike<number>): SummaryStats {
  const v = Float64Array.from(values).filter(Number.isFinite).sort();
  const n = v.length;
  if (n === 0) return { n: 0, mean: NaN, std: NaN, min: NaN, q1: NaN, median: NaN, q3: NaN, max: NaN };
  let s = 0;
  for (let i = 0; i < n; i++) s += v[i];
  const mean = s / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (v[i] - mean) * (v[i] - mean);
  return {
    n,
    mean,
    std: Math.sqrt(ss / n),
    min: v[0],
    q1: quantileSorted(v, 0.25),
    median: quantileSorted(v, 0.5),
    q3: quantileSorted(v, 0.75),
    max: v[n - 1],
  };
}

/** γ between two rows, with pair indices. */
export interface PairGamma {
  /** First row (class) index. */
  i: number;
  /** Second row (class) index, > i. */
  j: number;
  /** γ(row_i, row_j). */
  gamma: number;
}

/** Input of {@link geometryStats}. */
export interface GeometryInput {
  /** Row-major representations [n, dim]. */
  features: ArrayLike<number>;
  /** Feature dimension. */
  dim: number;
  /** One label in [0, K) per row. */
  labels: ArrayLike<number>;
  /** Number of classes K. */
  numClasses: number;
  /** Classifier (or probe) rows [K, dim], row-major, if any. */
  weights?: ArrayLike<number> | null;
}

/** Result of {@link geometryStats}. */
export interface GeometryResult {
  /** Number of classes K. */
  numClasses: number;
  /** Number of representations n. */
  n: number;
  /** Feature dimension. */
  dim: number;
  /** Rows per class. */
  classCounts: Int32Array;
  /** Class means [K][dim] (null for a class without rows). */
  means: (Float64Array | null)[];
  /** γ across the class means, every pair i < j of classes that have rows. */
  meansPairs: PairGamma[];
  /** γ across the weight rows, every pair i < j (empty without weights). */
  weightPairs: PairGamma[];
  /** γ(z_n, µ_{y_n}) of every row. */
  toMean: Float64Array;
  /** ‖z_n‖ of every row. */
  norms: Float64Array;
  /** γ at a regular simplex with K vertices (the red rule of panels 1 and 2). */
  simplexGamma: number;
}

function rowNorm(x: ArrayLike<number>, off: number, dim: number): number {
  let s = 0;
  for (let d = 0; d < dim; d++) s += x[off + d] * x[off + d];
  return Math.sqrt(s);
}

/** All pairs i < j of `rows` (skipping null rows or zero rows, whose angle is undefined). */
export function pairGammas(rows: readonly (ArrayLike<number> | null)[]): PairGamma[] {
  const out: PairGamma[] = [];
  const ok = rows.map((r) => r !== null && rowNorm(r, 0, r.length) > 0);
  for (let i = 0; i < rows.length; i++) {
    if (!ok[i]) continue;
    for (let j = i + 1; j < rows.length; j++) if (ok[j]) out.push({ i, j, gamma: gamma(rows[i]!, rows[j]!) });
  }
  return out;
}

/**
 * The three Fig. 7 statistics of a feature set (see the module doc). Classes without rows have no
 * mean and are left out of the pairs; a zero representation gets γ = NaN (dropped by
 * {@link summaryStats}).
 */
export function geometryStats(input: GeometryInput): GeometryResult {
  const { features, dim, labels } = input;
  const K = input.numClasses;
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`geometryStats: bad dim ${dim}`);
  if (features.length % dim !== 0) {
    throw new RangeError(`geometryStats: ${features.length} values are not rows of ${dim}`);
  }
  const n = features.length / dim;
  if (labels.length !== n) throw new RangeError(`geometryStats: ${labels.length} labels for ${n} rows`);
  if (!Number.isInteger(K) || K < 2) throw new RangeError(`geometryStats: K must be ≥ 2, got ${K}`);
  const sums = Array.from({ length: K }, () => new Float64Array(dim));
  const counts = new Int32Array(K);
  for (let r = 0; r < n; r++) {
    const y = labels[r];
    if (!Number.isInteger(y) || y < 0 || y >= K) {
      throw new RangeError(`geometryStats: label ${y} outside [0, ${K})`);
    }
    counts[y]++;
    const s = sums[y], off = r * dim;
    for (let d = 0; d < dim; d++) s[d] += features[off + d];
  }
  const means = sums.map((s, y) => {
    if (counts[y] === 0) return null;
    for (let d = 0; d < dim; d++) s[d] /= counts[y];
    return s;
  });
  const toMean = new Float64Array(n);
  const norms = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    const off = r * dim;
    const z = features instanceof Float32Array || features instanceof Float64Array
      ? features.subarray(off, off + dim)
      : Array.prototype.slice.call(features, off, off + dim) as number[];
    norms[r] = rowNorm(z, 0, dim);
    const mu = means[labels[r]]!;
    toMean[r] = norms[r] > 0 && rowNorm(mu, 0, dim) > 0 ? gamma(z, mu) : NaN;
  }
  let weightPairs: PairGamma[] = [];
  if (input.weights) {
    const w = input.weights;
    if (w.length % dim !== 0) {
      throw new RangeError(`geometryStats: weights of ${w.length} values for dim ${dim}`);
    }
    const rows: Float64Array[] = [];
    for (let k = 0; k < w.length / dim; k++) {
      rows.push(Float64Array.from({ length: dim }, (_, d) => w[k * dim + d]));
    }
    weightPairs = pairGammas(rows);
  }
  return {
    numClasses: K,
    n,
    dim,
    classCounts: counts,
    means,
    meansPairs: pairGammas(means),
    weightPairs,
    toMean,
    norms,
    simplexGamma: gammaSimplex(K),
  };
}

/** Rows of `features` [n, dim] scaled to norm `radius` (z = ρ·u/‖u‖; zero rows stay zero), float64. */
export function projectRows(features: ArrayLike<number>, dim: number, radius: number): Float64Array {
  const out = Float64Array.from(features);
  for (let off = 0; off < out.length; off += dim) {
    const nrm = rowNorm(out, off, dim);
    if (nrm > 0) { for (let d = 0; d < dim; d++) out[off + d] *= radius / nrm; }
  }
  return out;
}

/** Fraction of rows whose argmax_k ⟨w_k, z⟩ differs from the label (ties go to the lower class), float64. */
export function linearTrainError(
  features: ArrayLike<number>,
  dim: number,
  weights: ArrayLike<number>,
  labels: ArrayLike<number>,
): number {
  const n = labels.length, K = weights.length / dim;
  if (n === 0) return NaN;
  let wrong = 0;
  for (let r = 0; r < n; r++) {
    let best = 0, bestV = -Infinity;
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let d = 0; d < dim; d++) s += weights[k * dim + d] * features[r * dim + d];
      if (s > bestV) (bestV = s), (best = k);
    }
    if (best !== labels[r]) wrong++;
  }
  return wrong / n;
}

/** Summary of the geometry statistics (what summary.json holds). */
export interface GeometrySummary {
  /** γ at the regular simplex, 1 − arccos(−1/(K−1))/π. */
  simplexGamma: number;
  /** γ across class means. */
  acrossMeans: SummaryStats & { gapToSimplex: number };
  /** γ across weights (null without weights). */
  acrossWeights: (SummaryStats & { gapToSimplex: number }) | null;
  /** γ of each representation to its class mean. */
  toClassMeans: SummaryStats & { gapToCollapse: number };
  /** Norms of the representations. */
  norms: SummaryStats;
}

/** Summary statistics of a {@link GeometryResult}; gaps are mean − target. */
export function summarizeGeometry(g: GeometryResult): GeometrySummary {
  const m = summaryStats(g.meansPairs.map((p) => p.gamma));
  const w = g.weightPairs.length ? summaryStats(g.weightPairs.map((p) => p.gamma)) : null;
  const t = summaryStats(g.toMean);
  return {
    simplexGamma: g.simplexGamma,
    acrossMeans: { ...m, gapToSimplex: m.mean - g.simplexGamma },
    acrossWeights: w ? { ...w, gapToSimplex: w.mean - g.simplexGamma } : null,
    toClassMeans: { ...t, gapToCollapse: t.mean - 1 },
    norms: summaryStats(g.norms),
  };
}

/** CSV rows of every value: `statistic` ∈ {across_means, across_weights, to_class_mean}. */
export function geometryCsvRows(g: GeometryResult, labels: ArrayLike<number>): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (const p of g.meansPairs) {
    rows.push({ statistic: "across_means", i: p.i, j: p.j, class: "", gamma: p.gamma });
  }
  for (const p of g.weightPairs) {
    rows.push({ statistic: "across_weights", i: p.i, j: p.j, class: "", gamma: p.gamma });
  }
  for (let r = 0; r < g.toMean.length; r++) {
    rows.push({ statistic: "to_class_mean", i: r, j: "", class: labels[r], gamma: g.toMean[r] });
  }
  return rows;
}

function domainOf(values: ArrayLike<number>, marker: number): [number, number] {
  let lo = marker, hi = marker;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  }
  const width = Math.max(hi - lo, 0.02);
  const pad = 0.08 * width;
  const mid = (lo + hi) / 2;
  return [Math.max(0, mid - width / 2 - pad), Math.min(1.0001, mid + width / 2 + pad)];
}

/** Options of {@link geometryFigure}. */
export interface GeometryFigureOptions {
  /** Overall title. */
  title: string;
  /** Name of the weights panel (e.g. "classifier weights", "probe weights"). */
  weightsLabel?: string;
  /** Bins per histogram (default 40). */
  bins?: number;
}

/**
 * The three-panel figure of Fig. 7 (left): histograms of γ across class means, across weights and
 * to class means, with the simplex values as red rules (γ_simplex(K), γ_simplex(K), 1). The weights
 * panel is left out without weights.
 */
export function geometryFigure(g: GeometryResult, o: GeometryFigureOptions): VegaLiteSpec {
  const bins = o.bins ?? 40;
  const simplex: Marker = { value: g.simplexGamma, label: `simplex ${g.simplexGamma.toFixed(4)}` };
  const panel = (values: number[] | Float64Array, title: string, marker: Marker, subtitle: string) =>
    histogram({
      values,
      title,
      subtitle,
      bins,
      domain: domainOf(values, marker.value),
      markers: [marker],
      xTitle: "γ (Eq. 7)",
      yTitle: "count",
      width: 260,
      height: 190,
    });
  const m = g.meansPairs.map((p) => p.gamma);
  const panels = [panel(m, "γ across class means", simplex, `${m.length} pairs i ≠ j`)];
  if (g.weightPairs.length) {
    const w = g.weightPairs.map((p) => p.gamma);
    panels.push(panel(w, `γ across ${o.weightsLabel ?? "weights"}`, simplex, `${w.length} pairs i ≠ j`));
  }
  panels.push(
    panel(
      g.toMean,
      "γ to class means",
      { value: 1, label: "collapse 1" },
      `${g.toMean.length} representations`,
    ),
  );
  return hconcat(panels, { title: o.title });
}
