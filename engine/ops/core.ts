/**
 * The few kernels the engine itself needs: fill, same-shape add (gradient accumulation), in-place
 * add into a gradient slot, and poisoning of fresh outputs in test mode.
 */
import { gpu } from "../gpu.ts";
import { read, runKernel, write } from "../program.ts";
import { type DType, empty, fmtShape, ShapeError, type Tensor } from "../tensor.ts";
import { f32Lit, flatMain, grid1d, NAN, NAN_FN } from "../../shaders/common.ts";

/** Fills `out` with `literal` (a recorded kernel named `name`). */
function fillKernel(name: string, out: Tensor, literal: string): void {
  const body = `${literal === NAN ? NAN_FN : ""}
${flatMain(out.size)}
  out[i] = ${literal};
}`;
  runKernel({
    name,
    bindings: [write("out", out, `array<${out.dtype}>`)],
    body,
    workgroups: grid1d(out.size),
  });
}

function literalFor(value: number, dtype: DType): string {
  if (dtype === "f32") {
    return Number.isNaN(value) ? NAN : f32Lit(value);
  }
  return dtype === "i32" ? `${value | 0}i` : `${value >>> 0}u`;
}

/** Writes `value` into every element of `t` (recorded, not immediate). */
export function fillInto(t: Tensor, value: number): void {
  fillKernel("fill", t, literalFor(value, t.dtype));
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
  fillKernel("poison", t, t.dtype === "f32" ? NAN : `${t.dtype}(0x7fffffff)`);
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
  const type = `array<${a.dtype}>`;
  const body = `${flatMain(a.size)}
  out[i] = a[i] + b[i];
}`;
  const bindings = [read("a", a, type), read("b", b, type), write("out", out, type)];
  runKernel({ name: "addSame", bindings, body, workgroups: grid1d(a.size) });
  return out;
}

/** `dst += src` in place (gradient slots of packed parameters). */
export function addInto(dst: Tensor, src: Tensor): void {
  checkSame("addInto", dst, src);
  const type = `array<${dst.dtype}>`;
  const body = `${flatMain(dst.size)}
  dst[i] = dst[i] + src[i];
}`;
  const bindings = [write("dst", dst, type), read("src", src, type)];
  runKernel({ name: "addInto", bindings, body, workgroups: grid1d(dst.size) });
}

/** `dst = src` for equal sizes (recorded copy). */
export function copyInto(dst: Tensor, src: Tensor): void {
  checkSame("copyInto", dst, src);
  gpu().copy(src.range, dst.range);
}
