/**
 * Float64 CPU references for elementwise ops with broadcasting, reductions over axes, and shape ops.
 */

/** A float64 array with its shape. */
export interface Arr {
  data: Float64Array;
  shape: number[];
}

/** Row-major strides of `shape`. */
export function strides(shape: readonly number[]): number[] {
  const s = new Array(shape.length).fill(1);
  for (let k = shape.length - 2; k >= 0; k--) s[k] = s[k + 1] * shape[k + 1];
  return s;
}

/** Product of extents. */
export function size(shape: readonly number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

/** NumPy broadcast shape (throws if incompatible). */
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let k = 0; k < rank; k++) {
    const da = a[a.length - rank + k] ?? 1;
    const db = b[b.length - rank + k] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`no broadcast ${a} ${b}`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** The flat index into an array of `shape` of output coordinates `coords` (broadcast rules). */
function bIndex(coords: number[], shape: readonly number[]): number {
  const st = strides(shape);
  let idx = 0;
  const off = coords.length - shape.length;
  for (let k = 0; k < shape.length; k++) if (shape[k] !== 1) idx += coords[off + k] * st[k];
  return idx;
}

function unravel(i: number, shape: readonly number[]): number[] {
  const c = new Array(shape.length);
  for (let k = shape.length - 1; k >= 0; k--) {
    c[k] = i % shape[k];
    i = Math.floor(i / shape[k]);
  }
  return c;
}

/** Elementwise `f(a, b)` with broadcasting, in float64. */
export function binaryRef(a: Arr, b: Arr, f: (x: number, y: number) => number): Arr {
  const shape = broadcastShape(a.shape, b.shape);
  const n = size(shape);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = unravel(i, shape);
    data[i] = f(a.data[bIndex(c, a.shape)], b.data[bIndex(c, b.shape)]);
  }
  return { data, shape };
}

/** Reduction over `axes` (all when undefined) with `init`/`f`; keepDims keeps extents of 1. */
export function reduceRef(
  x: Arr,
  axes: number[] | undefined,
  keepDims: boolean,
  kind: "sum" | "mean" | "max",
): Arr {
  const rank = x.shape.length;
  const set = new Set((axes ?? x.shape.map((_, k) => k)).map((a) => (a < 0 ? a + rank : a)));
  const kshape = x.shape.map((d, k) => (set.has(k) ? 1 : d));
  const n = size(kshape);
  const acc = new Float64Array(n).fill(kind === "max" ? -Infinity : 0);
  let count = 1;
  for (const k of set) count *= x.shape[k];
  for (let i = 0; i < x.data.length; i++) {
    const o = bIndex(unravel(i, x.shape), kshape);
    acc[o] = kind === "max" ? Math.max(acc[o], x.data[i]) : acc[o] + x.data[i];
  }
  if (kind === "mean") { for (let o = 0; o < n; o++) acc[o] /= count; }
  const shape = keepDims ? kshape : x.shape.filter((_, k) => !set.has(k));
  return { data: acc, shape };
}

/** Rows of a [N, D] array at `indices` (out-of-range rows are zeros). */
export function gatherRowsRef(
  x: Float64Array,
  n: number,
  d: number,
  indices: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(indices.length * d);
  for (let b = 0; b < indices.length; b++) {
    const r = indices[b];
    if (r < 0 || r >= n) continue;
    for (let j = 0; j < d; j++) out[b * d + j] = x[r * d + j];
  }
  return out;
}

/** Argmax of each row of a [rows, k] array (first on ties). */
export function argmaxRef(x: ArrayLike<number>, rows: number, k: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (x[r * k + j] > x[r * k + best]) best = j;
    out[r] = best;
  }
  return out;
}
