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
   * (default `x[idx]`). Extra read bindings come after `x` (see `extra`).
   */
  element?: (idx: string) => string;
  /** Extra read-only f32 bindings after `x`, by name. */
  extra?: string[];
}

/**
 * The reduction kernel: bindings `x`, extras, then `out` (numOut·chunks elements; `out[o * chunks + k]`).
 */
export function reduceCode(spec: ReduceKernel): string {
  const { layout, op, chunks, chunkLen } = spec;
  const total = layout.numOut * chunks;
  const extra = spec.extra ?? [];
  const element = spec.element ?? ((idx: string) => `x[${idx}]`);
  const decls = [`@group(0) @binding(0) var<storage, read> x: array<f32>;`];
  extra.forEach((name, j) =>
    decls.push(`@group(0) @binding(${j + 1}) var<storage, read> ${name}: array<f32>;`)
  );
  decls.push(`@group(0) @binding(${extra.length + 1}) var<storage, read_write> out: array<f32>;`);
  const combine = op === "sum" ? "acc = acc + v;" : "acc = max(acc, v);";
  const scale = spec.scale !== undefined && spec.scale !== 1 ? ` * ${f32Lit(spec.scale)}` : "";
  // Invocation g: output o = g % numOut, chunk k = g / numOut (consecutive invocations, consecutive outputs).
  const single = layout.reduced.length === 1 && layout.reduced[0].stride === 1;
  const rOffset = (v: string) => single ? v : offsetExpr(layout.reduced, v);
  return `${decls.join("\n")}
${flatMain(total)}
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
