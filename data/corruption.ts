/**
 * Random-label corruption (the paper's "random labels" experiments).
 * @module
 */

import { Rng } from "./sampler.ts";

/** Result of {@link corruptLabels}. */
export type CorruptionResult = {
  /** The new labels (a copy; the input is untouched). */
  labels: Int32Array;
  /** The ⌊pN⌋ distinct indices that were given a random label, ascending. */
  corruptedIndices: Int32Array;
};

/**
 * ⌊p·N⌋ computed so that decimal fractions like p = 0.29, N = 100 give 29 (not 28 from the
 * binary rounding of 0.29·100).
 */
export function corruptionCount(p: number, n: number): number {
  const x = p * n;
  const r = Math.round(x);
  if (Math.abs(x - r) <= 1e-9 * Math.max(1, Math.abs(x))) return r;
  return Math.floor(x);
}

/**
 * Corrupts labels: exactly ⌊p·N⌋ distinct indices are chosen uniformly at random (seeded),
 * and each gets a label drawn uniformly from the K − 1 classes other than its own
 * (`mode = "wrong"`, the default) or from all K classes (`mode = "any"`; the label may
 * then stay the same). Deterministic given `seed`.
 */
export function corruptLabels(
  labels: ArrayLike<number>,
  numClasses: number,
  p: number,
  seed: number,
  mode: "wrong" | "any" = "wrong",
): CorruptionResult {
  const n = labels.length;
  if (!(p >= 0 && p <= 1)) throw new Error(`corruptLabels: p must be in [0,1], got ${p}`);
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new Error(`corruptLabels: numClasses must be a positive integer, got ${numClasses}`);
  }
  if (mode !== "wrong" && mode !== "any") throw new Error(`corruptLabels: unknown mode ${mode}`);
  if (mode === "wrong" && numClasses < 2) {
    throw new Error("corruptLabels: mode 'wrong' needs numClasses >= 2");
  }
  const out = Int32Array.from(labels);
  for (let i = 0; i < n; i++) {
    if (!(out[i] >= 0 && out[i] < numClasses)) {
      throw new Error(`corruptLabels: label ${labels[i]} at index ${i} outside [0, ${numClasses})`);
    }
  }
  const m = corruptionCount(p, n);
  const rng = new Rng(seed);
  // partial Fisher–Yates on [0, n): the first m entries are a uniform m-subset
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let j = 0; j < m; j++) {
    const r = j + rng.randInt(n - j);
    const t = perm[j];
    perm[j] = perm[r];
    perm[r] = t;
  }
  const chosen = perm.slice(0, m).sort();
  for (let j = 0; j < m; j++) {
    const i = chosen[j];
    if (mode === "any") {
      out[i] = rng.randInt(numClasses);
    } else {
      const r = rng.randInt(numClasses - 1);
      out[i] = r >= out[i] ? r + 1 : r;
    }
  }
  return { labels: out, corruptedIndices: chosen };
}
