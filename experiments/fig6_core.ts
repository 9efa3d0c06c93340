/**
 * The computation of Fig. 6 without files: its options, the labels, the start points, and the batch
 * losses grouped by label configuration. Web-standard (no `Deno`, no `node:`), so `experiments/fig6.ts`
 * and the page in `web/` share it; the descent itself is the engine's `ScMultisetTrainer`.
 *
 * @module
 */
import type { Rng } from "../data/sampler.ts";
import type { MultisetTable } from "../engine/ops/sc_multiset.ts";
import { scLossAtSimplex } from "../theory/mod.ts";

/** Command-line options of fig6 (besides --out, --seed, --json, --quiet). */
export const FIG6_OPTIONS = {
  k: { type: "integer", default: 3, min: 2, max: 16, description: "number of classes K" },
  nPerClass: { type: "integer", default: 4, min: 1, description: "points per class (N = K·n)" },
  b: { type: "integer", default: 9, min: 2, max: 15, description: "batch size b" },
  h: { type: "integer", default: 2, min: 1, description: "dimension of the points (S^{h−1})" },
  rho: { type: "number", default: 1, min: 1e-3, description: "radius ρ of the sphere (ρ² = 1/τ)" },
  steps: {
    type: "integer",
    default: 0,
    min: 0,
    description: "optimisation steps (0: 400 full-batch, 100000 with --stochastic)",
  },
  lr: {
    type: "number",
    default: 0,
    min: 0,
    description: "learning rate (0: 0.5 full-batch, 0.02 stochastic)",
  },
  lrPower: {
    type: "number",
    default: -1,
    min: -1,
    description: "schedule lr·(1 − s/T)^p (−1: p = 0 full-batch, 5 stochastic)",
  },
  momentum: { type: "number", default: 0.9, min: 0, max: 0.999, description: "heavy-ball momentum" },
  stochastic: {
    type: "boolean",
    default: false,
    description: "one batch per step drawn uniformly from 𝔅 (the paper's SGD) instead of full batch",
  },
  logEvery: { type: "integer", default: 100, min: 1, description: "steps between progress readbacks" },
  tolerance: { type: "number", default: 1e-5, min: 0, description: "required relative gap to the bound" },
  bins: { type: "integer", default: 80, min: 5, description: "histogram bins" },
} as const;

/** One label configuration (sorted class multiplicities) of the histogram. */
export interface Fig6Pattern {
  /** e.g. "(4, 3, 2)". */
  pattern: string;
  /** Number of batches in 𝔅 with this configuration. */
  batches: number;
  /** Mean, smallest and largest batch loss of the configuration at the final points. */
  meanLoss: number;
  /** Smallest batch loss. */
  minLoss: number;
  /** Largest batch loss. */
  maxLoss: number;
  /** The batch loss at the regular simplex (the same for every batch of the configuration). */
  simplexLoss: number;
}

/** Balanced labels 0..K−1, n each, in blocks. */
export function balancedLabels(K: number, n: number): number[] {
  return Array.from({ length: K * n }, (_, i) => Math.floor(i / n));
}

/** Sorted class multiplicities of a batch, as text "(4, 3, 2)" (K entries, zeros included). */
export function patternOf(classCounts: ArrayLike<number>): string {
  return `(${Array.from(classCounts).sort((a, b) => b - a).join(", ")})`;
}

/** Start points: standard Gaussian samples projected onto the sphere of radius ρ in R^h, flat [N·h]. */
export function sphereStartPoints(N: number, h: number, rho: number, rng: Rng): Float32Array {
  const z0 = new Float32Array(N * h);
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (let d = 0; d < h; d++) s += (z0[i * h + d] = rng.normal()) ** 2;
    const sc = rho / Math.sqrt(s);
    for (let d = 0; d < h; d++) z0[i * h + d] *= sc;
  }
  return z0;
}

/**
 * Every batch loss of `table` grouped by label configuration (sorted class multiplicities), with the
 * loss of the configuration at the regular simplex; `onBatch` sees each batch's point counts, class
 * counts and configuration.
 */
export function groupBatchLosses(
  labels: readonly number[],
  K: number,
  rho: number,
  table: MultisetTable,
  losses: ArrayLike<number>,
  onBatch?: (t: number, counts: ArrayLike<number>, classCounts: number[], pattern: string) => void,
): { groups: Map<string, { losses: number[]; counts: number[] }>; patterns: Fig6Pattern[] } {
  const N = labels.length;
  const groups = new Map<string, { losses: number[]; counts: number[] }>();
  for (let t = 0; t < table.count; t++) {
    const c = table.counts(t);
    const cls = new Array<number>(K).fill(0);
    for (let k = 0; k < N; k++) cls[labels[k]] += c[k];
    const pattern = patternOf(cls);
    let grp = groups.get(pattern);
    if (!grp) groups.set(pattern, grp = { losses: [], counts: [...cls].sort((x, y) => y - x) });
    grp.losses.push(losses[t]);
    onBatch?.(t, c, cls, pattern);
  }
  const patterns: Fig6Pattern[] = [...groups.entries()].map(([pattern, grp]) => {
    let s = 0, lo = Infinity, hi = -Infinity;
    for (const v of grp.losses) {
      s += v;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    return {
      pattern,
      batches: grp.losses.length,
      meanLoss: s / grp.losses.length,
      minLoss: lo,
      maxLoss: hi,
      simplexLoss: scLossAtSimplex(grp.counts, rho * rho, K),
    };
  }).sort((a, b) => a.simplexLoss - b.simplexLoss);
  return { groups, patterns };
}
