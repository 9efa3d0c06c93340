/**
 * WGSL builders for reductions over any set of axes.
 *
 * The input shape is split into merged runs of kept and reduced dimensions. One invocation reduces a
 * run of `chunkLen` consecutive elements of the (flattened) reduced index of one output element and
 * writes either the result or, in a two-pass reduction, a partial at `partial[o * chunks + k]`, which
 * a second kernel reduces along its contiguous last axis. No atomics, deterministic order.
 */
import { f32Lit, flatMain } from "./common.ts";

/** A merged dimension of the input: its extent and its element stride. */
export interface Dim {
  /** Extent. */
  size: number;
  /** Element stride of the innermost merged axis. */
  stride: number;
}

/** Kept and reduced dimensions of an input, each merged and ordered outermost first. */
export interface ReduceLayout {
  /** Kept (output) dimensions. */
  kept: Dim[];
  /** Reduced dimensions. */
  reduced: Dim[];
  /** Number of outputs (product of kept extents). */
  numOut: number;
  /** Number of reduced elements per output. */
  count: number;
}

/** Splits `shape` into merged kept/reduced dimensions for a reduction over `axes` (normalised). */
export function reduceLayout(shape: readonly number[], axes: ReadonlySet<number>): ReduceLayout {
  const strides: number[] = new Array(shape.length);
  let s = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    strides[k] = s;
    s *= shape[k];
  }
  const kept: Dim[] = [];
  const reduced: Dim[] = [];
  let lastKind: "k" | "r" | null = null;
  for (let k = 0; k < shape.length; k++) {
    if (shape[k] === 1) continue;
    const kind = axes.has(k) ? "r" : "k";
    const list = kind === "r" ? reduced : kept;
    if (lastKind === kind) {
      const last = list[list.length - 1];
      last.size *= shape[k];
      last.stride = strides[k];
    } else {
      list.push({ size: shape[k], stride: strides[k] });
    }
    lastKind = kind;
  }
  const numOut = kept.reduce((p, d) => p * d.size, 1);
  const count = reduced.reduce((p, d) => p * d.size, 1);
  return { kept, reduced, numOut, count };
}

/** WGSL expression of the input offset of flattened index `v` over `dims` (outermost first). */
function offsetExpr(dims: Dim[], v: string): string {
  if (dims.length === 0) return "0u";
  const terms: string[] = [];
  let inner = 1;
  for (let k = dims.length - 1; k >= 0; k--) {
    let coord = inner === 1 ? v : `(${v} / ${inner}u)`;
    if (k > 0) coord = `(${coord} % ${dims[k].size}u)`;
    terms.push(dims[k].stride === 1 ? coord : `${coord} * ${dims[k].stride}u`);
    inner *= dims[k].size;
  }
  return terms.join(" + ");
}

/** What to reduce and how. */
export interface ReduceKernel {
  /** The split of the input into kept and reduced dimensions. */
  layout: ReduceLayout;
  /** Combining operation. */
  op: "sum" | "max";
  /** Number of chunks per output (1 = each invocation reduces everything). */
  chunks: number;
  /** Reduced elements per chunk (the last chunk may be shorter, never empty). */
  chunkLen: number;
  /** Multiplies the result (mean's 1/count); only in the final pass. */
  scale?: number;
  /**
   * The element expression given the WGSL offset `idx` into `x` and the output index `o`
   * (default `x[idx]`), which may read other bindings the dispatch declares.
   */
  element?: (idx: string) => string;
}

/**
 * The body of the reduction kernel over the bindings `x` and `out` (numOut·chunks elements;
 * `out[o * chunks + k]`), declared by the dispatch.
 */
export function reduceBody(spec: ReduceKernel): string {
  const { layout, op, chunks, chunkLen } = spec;
  const total = layout.numOut * chunks;
  const element = spec.element ?? ((idx: string) => `x[${idx}]`);
  const combine = op === "sum" ? "acc = acc + v;" : "acc = max(acc, v);";
  const scale = spec.scale !== undefined && spec.scale !== 1 ? ` * ${f32Lit(spec.scale)}` : "";
  // Invocation g: output o = g % numOut, chunk k = g / numOut (consecutive invocations, consecutive outputs).
  const single = layout.reduced.length === 1 && layout.reduced[0].stride === 1;
  const rOffset = (v: string) => single ? v : offsetExpr(layout.reduced, v);
  return `${flatMain(total)}
  let o = i % ${layout.numOut}u;
  let k = i / ${layout.numOut}u;
  let base = ${offsetExpr(layout.kept, "o")};
  let r0 = k * ${chunkLen}u;
  let r1 = min(r0 + ${chunkLen}u, ${layout.count}u);
  var acc = ${element(`base + ${rOffset("r0")}`)};
  for (var r = r0 + 1u; r < r1; r = r + 1u) {
    let v = ${element(`base + ${rOffset("r")}`)};
    ${combine}
  }
  out[o * ${chunks}u + k] = acc${scale};
}`;
}
