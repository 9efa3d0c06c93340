/**
 * The few kernels the engine itself needs: fill, same-shape add (gradient accumulation), in-place
 * add into a gradient slot, and poisoning of fresh outputs in test mode.
 */
import { gpu } from "../gpu.ts";
import { type DType, empty, fmtShape, ShapeError, type Tensor } from "../tensor.ts";
import { f32Lit, flatMain, grid1d, NAN, NAN_FN } from "../../shaders/common.ts";

function fillCode(n: number, dtype: DType, literal: string): string {
  return `@group(0) @binding(0) var<storage, read_write> out: array<${dtype}>;
${literal === NAN ? NAN_FN : ""}
${flatMain(n)}
  out[i] = ${literal};
}`;
}

function literalFor(value: number, dtype: DType): string {
  if (dtype === "f32") {
    return Number.isNaN(value) ? NAN : f32Lit(value);
  }
  return dtype === "i32" ? `${value | 0}i` : `${value >>> 0}u`;
}

/** Writes `value` into every element of `t` (recorded, not immediate). */
export function fillInto(t: Tensor, value: number): void {
  gpu().dispatch(
    { name: "fill", code: fillCode(t.size, t.dtype, literalFor(value, t.dtype)) },
    [t.range],
    grid1d(t.size),
  );
}

/** A new tensor of `shape` filled with `value`. */
export function fill(shape: readonly number[], value: number, dtype: DType = "f32"): Tensor {
  const t = empty(shape, dtype);
  fillInto(t, value);
  return t;
}

/** Fills a fresh output with NaN (f32) or 0x7fffffff (integers), so an element no kernel wrote shows in tests. */
export function poisonFill(t: Tensor): void {
  if (t.size === 0) return;
  const code = fillCode(
    t.size,
    t.dtype,
    t.dtype === "f32" ? NAN : `${t.dtype}(0x7fffffff)`,
  );
  gpu().dispatch({ name: "poison", code }, [t.range], grid1d(t.size));
}

function checkSame(op: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size || a.dtype !== b.dtype) {
    throw new ShapeError(op, `${a.dtype}${fmtShape(a.shape)} and ${b.dtype}${fmtShape(b.shape)} differ`);
  }
}

/** `a + b` for tensors of equal size (no broadcasting): the gradient accumulator. */
export function addSame(a: Tensor, b: Tensor): Tensor {
  checkSame("addSame", a, b);
  const out = empty(a.shape, a.dtype);
  const code = `@group(0) @binding(0) var<storage, read> a: array<${a.dtype}>;
@group(0) @binding(1) var<storage, read> b: array<${a.dtype}>;
@group(0) @binding(2) var<storage, read_write> out: array<${a.dtype}>;
${flatMain(a.size)}
  out[i] = a[i] + b[i];
}`;
  gpu().dispatch({ name: "addSame", code }, [a.range, b.range, out.range], grid1d(a.size));
  return out;
}

/** `dst += src` in place (gradient slots of packed parameters). */
export function addInto(dst: Tensor, src: Tensor): void {
  checkSame("addInto", dst, src);
  const code = `@group(0) @binding(0) var<storage, read_write> dst: array<${dst.dtype}>;
@group(0) @binding(1) var<storage, read> src: array<${dst.dtype}>;
${flatMain(dst.size)}
  dst[i] = dst[i] + src[i];
}`;
  gpu().dispatch({ name: "addInto", code }, [dst.range, src.range], grid1d(dst.size));
}

/** `dst = src` for equal sizes (recorded copy). */
export function copyInto(dst: Tensor, src: Tensor): void {
  checkSame("copyInto", dst, src);
  gpu().copy(src.range, dst.range);
}
