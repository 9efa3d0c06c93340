/**
 * WGSL builders for elementwise kernels with NumPy broadcasting.
 *
 * Every input of a map kernel is broadcast to the output shape; the index math (division of the flat
 * output index by the baked output extents, dot product with each input's baked strides) is generated
 * per shape. Adjacent dimensions along which every input has the same broadcast pattern are merged
 * first, so a same-shape op or a row/column broadcast needs at most two divisions per element.
 */
import { flatMain } from "./common.ts";

/** The broadcast shape of `a` and `b` (NumPy rules), or null when they do not broadcast. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] | null {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let k = 0; k < rank; k++) {
    const da = a[a.length - rank + k] ?? 1;
    const db = b[b.length - rank + k] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return null;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** One input of a map kernel: a WGSL identifier, its shape (broadcastable to the output) and dtype. */
export interface MapInput {
  /** WGSL identifier of the binding (not starting with `bc_`). */
  name: string;
  /** Shape, broadcastable to the output shape. */
  shape: readonly number[];
  /** Element type (default f32). */
  dtype?: "f32" | "i32" | "u32";
}

/** A merged output dimension and each input's stride along it. */
export interface MergedDim {
  /** Extent. */
  size: number;
  /** Per input: the stride along this merged dimension (0 where broadcast). */
  strides: number[];
}

/** Merged output dims with each input's stride (0 = broadcast), outermost first. */
export function mergeBroadcastDims(
  out: readonly number[],
  inputs: readonly (readonly number[])[],
): MergedDim[] {
  const rank = out.length;
  // Per input, per output axis: is it broadcast (extent 1 or missing) while the output extent > 1?
  const dims: { size: number; bcast: boolean[] }[] = [];
  for (let k = 0; k < rank; k++) {
    if (out[k] === 1) continue;
    dims.push({
      size: out[k],
      bcast: inputs.map((s) => (s[s.length - rank + k] ?? 1) === 1),
    });
  }
  const merged: { size: number; bcast: boolean[] }[] = [];
  for (const d of dims) {
    const last = merged.at(-1);
    if (last && last.bcast.every((b, j) => b === d.bcast[j])) last.size *= d.size;
    else merged.push({ size: d.size, bcast: [...d.bcast] });
  }
  // Strides of each input along merged dims (inner to outer).
  const result: MergedDim[] = merged.map((m) => ({ size: m.size, strides: inputs.map(() => 0) }));
  for (let j = 0; j < inputs.length; j++) {
    let stride = 1;
    for (let k = merged.length - 1; k >= 0; k--) {
      if (!merged[k].bcast[j]) {
        result[k].strides[j] = stride;
        stride *= merged[k].size;
      }
    }
  }
  return result;
}

/**
 * WGSL statements computing `let <name>_idx: u32` for every input from the flat output index `i`
 * (temporaries are named `bc_*`; input names must not start with `bc_`).
 */
export function broadcastIndexCode(out: readonly number[], inputs: readonly MapInput[]): string {
  const dims = mergeBroadcastDims(out, inputs.map((x) => x.shape));
  const lines: string[] = [];
  const coords: string[] = new Array(dims.length);
  if (dims.length === 1) {
    coords[0] = "i";
  } else if (dims.length > 1) {
    lines.push("  var bc_rest = i;");
    for (let k = dims.length - 1; k >= 1; k--) {
      lines.push(`  let bc_${k} = bc_rest % ${dims[k].size}u;`, `  bc_rest = bc_rest / ${dims[k].size}u;`);
      coords[k] = `bc_${k}`;
    }
    lines.push("  let bc_0 = bc_rest;");
    coords[0] = "bc_0";
  }
  inputs.forEach((input, j) => {
    const terms: string[] = [];
    dims.forEach((d, k) => {
      const s = d.strides[j];
      if (s === 0) return;
      terms.push(s === 1 ? coords[k] : `${coords[k]} * ${s}u`);
    });
    lines.push(`  let ${input.name}_idx = ${terms.length ? terms.join(" + ") : "0u"};`);
  });
  return lines.join("\n");
}

/**
 * The body of a kernel `out[i] = expr` over the output shape where each input named `v` (a binding of
 * that name) is available in `expr` as `v_val` (its broadcast element); `out` is the output binding.
 * With `perInvocation` > 1 (only when every input has the output's shape, see `mapRun`) each invocation
 * handles a run of that many consecutive elements: dispatch `ceil(n / perInvocation)` invocations.
 */
export function mapBody(
  out: readonly number[],
  inputs: readonly MapInput[],
  expr: string,
  perInvocation = 1,
): string {
  let n = 1;
  for (const d of out) n *= d;
  if (perInvocation > 1) {
    if (!inputs.every((x) => sameShape(x.shape, out))) {
      throw new Error("mapBody: several elements per invocation need inputs of the output's shape");
    }
    // Every input is indexed like the output: a run of `perInvocation` elements, no index math.
    const runLoads = inputs.map((x) => `    let ${x.name}_val = ${x.name}[e];`);
    return `${flatMain(Math.ceil(n / perInvocation))}
  let e0 = i * ${perInvocation}u;
  let e1 = min(e0 + ${perInvocation}u, ${n}u);
  for (var e = e0; e < e1; e = e + 1u) {
${runLoads.join("\n")}
    out[e] = ${expr};
  }
}`;
  }
  const loads = inputs.map((x) => `  let ${x.name}_val = ${x.name}[${x.name}_idx];`);
  return `${flatMain(n)}
${broadcastIndexCode(out, inputs)}
${loads.join("\n")}
  out[i] = ${expr};
}`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, k) => d === b[k]);
}

/** Elements per invocation `mapBody` may use for these inputs: 4 when none is broadcast, else 1. */
export function mapRun(out: readonly number[], inputs: readonly MapInput[]): number {
  return inputs.every((x) => sameShape(x.shape, out)) ? 4 : 1;
}

/** WGSL for `x^p` of the f32 expression `x` with the literal exponent `p` (integers: sign-correct). */
export function powExpr(x: string, p: number, lit: (v: number) => string): string {
  if (p === 0) return "1.0";
  if (p === 1) return x;
  if (p === 2) return `(${x} * ${x})`;
  if (p === 3) return `(${x} * ${x} * ${x})`;
  if (p === 0.5) return `sqrt(${x})`;
  if (p === -1) return `(1.0 / ${x})`;
  if (Number.isInteger(p)) {
    const mag = `pow(abs(${x}), ${lit(p)})`;
    return p % 2 === 0 ? mag : `select(${mag}, -${mag}, ${x} < 0.0)`;
  }
  return `pow(${x}, ${lit(p)})`;
}
