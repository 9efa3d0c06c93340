/**
 * Elementwise ops with NumPy broadcasting (`add`, `sub`, `mul`, `div`), scalar ops and unary maps.
 *
 * Each forward is one generated kernel with the broadcast index math baked in; each backward is one
 * kernel per input gradient (the map of the local derivative, broadcast like the forward), followed
 * by a sum over the broadcast axes (`sumTo`) for an input smaller than the output.
 */
import { read, runKernel, write } from "../program.ts";
import { type DType, empty, fmtShape, ShapeError, type Tensor } from "../tensor.ts";
import { record } from "../autograd.ts";
import { sumTo } from "./reduce.ts";
import { broadcastShapes, mapBody, type MapInput, mapRun, powExpr } from "../../shaders/elementwise.ts";
import { f32Lit, grid1d } from "../../shaders/common.ts";

/** Records `out = expr(inputs)` over `shape`; `inputs` are bound in order, `out` last. */
function map(
  name: string,
  shape: readonly number[],
  inputs: [string, Tensor][],
  expr: string,
  dtype: DType = "f32",
): Tensor {
  const out = empty(shape, dtype);
  if (out.size === 0) return out;
  const spec: MapInput[] = inputs.map(([n, t]) => ({ name: n, shape: t.shape, dtype: t.dtype }));
  runMap(name, inputs, out, expr, mapRun(shape, spec));
  return out;
}

/**
 * Records `out = expr(inputs)` over `out`'s shape (see `mapBody`): each input `[v, t]` is the read
 * binding `v` (its broadcast element `v_val` in `expr`), `out` the written one; `run` elements per
 * invocation (see `mapRun`).
 */
export function runMap(name: string, inputs: [string, Tensor][], out: Tensor, expr: string, run = 1): void {
  const spec: MapInput[] = inputs.map(([n, t]) => ({ name: n, shape: t.shape, dtype: t.dtype }));
  runKernel({
    name,
    bindings: [
      ...inputs.map(([n, t]) => read(n, t, `array<${t.dtype}>`)),
      write("out", out, `array<${out.dtype}>`),
    ],
    body: mapBody(out.shape, spec, expr, run),
    workgroups: grid1d(Math.ceil(out.size / run)),
  });
}

/** `map` followed by the reduction to `target`'s shape (the gradient of a broadcast input). */
function gradMap(
  name: string,
  shape: readonly number[],
  inputs: [string, Tensor][],
  expr: string,
  target: Tensor,
) {
  // The gradient of an input of the output's shape that is the output gradient itself: no kernel
  // (autograd aliases a tensor returned for several inputs).
  if (expr === "g_val" && inputs.length === 1 && sameShape(target.shape, shape)) return inputs[0][1];
  const full = map(name, shape, inputs, expr);
  const reduced = sumTo(full, target.shape);
  if (reduced !== full) full.dispose();
  return reduced;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, k) => d === b[k]);
}

type Binary = "add" | "sub" | "mul" | "div";
const BINARY_EXPR: Record<Binary, string> = {
  add: "a_val + b_val",
  sub: "a_val - b_val",
  mul: "a_val * b_val",
  div: "a_val / b_val",
};

function binary(op: Binary, a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== b.dtype) {
    throw new ShapeError(
      op,
      `dtypes differ: ${a.dtype}${fmtShape(a.shape)} and ${b.dtype}${fmtShape(b.shape)}`,
    );
  }
  const shape = broadcastShapes(a.shape, b.shape);
  if (!shape) {
    throw new ShapeError(op, `shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} do not broadcast`);
  }
  const out = map(op, shape, [["a", a], ["b", b]], BINARY_EXPR[op], a.dtype);
  return record(op, [a, b], out, (g) => {
    const ga = !a.requiresGrad
      ? null
      : op === "add" || op === "sub"
      ? gradMap(`${op}.backward`, shape, [["g", g]], "g_val", a)
      : op === "mul"
      ? gradMap(`${op}.backward`, shape, [["g", g], ["b", b]], "g_val * b_val", a)
      : gradMap(`${op}.backward`, shape, [["g", g], ["b", b]], "g_val / b_val", a);
    const gb = !b.requiresGrad
      ? null
      : op === "add"
      ? gradMap(`${op}.backward`, shape, [["g", g]], "g_val", b)
      : op === "sub"
      ? gradMap(`${op}.backward`, shape, [["g", g]], "-g_val", b)
      : op === "mul"
      ? gradMap(`${op}.backward`, shape, [["g", g], ["a", a]], "g_val * a_val", b)
      : gradMap(
        `${op}.backward`,
        shape,
        [["g", g], ["a", a], ["b", b]],
        "-g_val * a_val / (b_val * b_val)",
        b,
      );
    return [ga, gb];
  });
}

/** `a + b` with NumPy broadcasting (equal dtypes; f32 is differentiable). */
export function add(a: Tensor, b: Tensor): Tensor {
  return binary("add", a, b);
}

/** `a − b` with NumPy broadcasting. */
export function sub(a: Tensor, b: Tensor): Tensor {
  return binary("sub", a, b);
}

/** `a · b` elementwise with NumPy broadcasting. */
export function mul(a: Tensor, b: Tensor): Tensor {
  return binary("mul", a, b);
}

/** `a / b` elementwise with NumPy broadcasting. */
export function div(a: Tensor, b: Tensor): Tensor {
  return binary("div", a, b);
}

function checkF32(op: string, x: Tensor): void {
  if (x.dtype !== "f32") {
    throw new ShapeError(op, `expects an f32 tensor, got ${x.dtype}${fmtShape(x.shape)}`);
  }
}

/**
 * A unary f32 op: forward `expr` of `x_val`; backward `gradExpr` of `g_val`, `x_val` and, when
 * `useOut`, the forward output `y_val`.
 */
function unary(name: string, x: Tensor, expr: string, gradExpr: string, useOut = false): Tensor {
  checkF32(name, x);
  const out = map(name, x.shape, [["x", x]], expr);
  return record(name, [x], out, (g) => {
    if (gradExpr === "g_val") return [g];
    const inputs: [string, Tensor][] = [["g", g]];
    if (gradExpr.includes("x_val")) inputs.push(["x", x]);
    if (useOut) inputs.push(["y", out]);
    return [map(`${name}.backward`, x.shape, inputs, gradExpr)];
  });
}

/** `x + s` for a number `s`. */
export function addScalar(x: Tensor, s: number): Tensor {
  return unary("addScalar", x, `x_val + ${f32Lit(s)}`, "g_val");
}

/** `x · s` for a number `s`. */
export function mulScalar(x: Tensor, s: number): Tensor {
  return unary("mulScalar", x, `x_val * ${f32Lit(s)}`, `g_val * ${f32Lit(s)}`);
}

/** `−x`. */
export function neg(x: Tensor): Tensor {
  return unary("neg", x, "-x_val", "-g_val");
}

/** `max(x, 0)`; the gradient at 0 is 0 (as PyTorch). */
export function relu(x: Tensor): Tensor {
  return unary("relu", x, "max(x_val, 0.0)", "select(0.0, g_val, x_val > 0.0)");
}

/** `max(x, m)`; the gradient passes where `x ≥ m` (as PyTorch's `clamp_min`). */
export function clampMin(x: Tensor, m: number): Tensor {
  return unary("clampMin", x, `max(x_val, ${f32Lit(m)})`, `select(0.0, g_val, x_val >= ${f32Lit(m)})`);
}

/** `eˣ`. */
export function exp(x: Tensor): Tensor {
  return unary("exp", x, "exp(x_val)", "g_val * y_val", true);
}

/** Natural logarithm. */
export function log(x: Tensor): Tensor {
  return unary("log", x, "log(x_val)", "g_val / x_val");
}

/** Square root. */
export function sqrt(x: Tensor): Tensor {
  return unary("sqrt", x, "sqrt(x_val)", "g_val * 0.5 / y_val", true);
}

/** `x²`. */
export function square(x: Tensor): Tensor {
  return unary("square", x, "x_val * x_val", "2.0 * g_val * x_val");
}

/**
 * `xᵖ` for a number `p`. Integer exponents are exact in sign for negative `x`; other exponents follow
 * WGSL `pow` (undefined for negative `x`).
 */
export function powScalar(x: Tensor, p: number): Tensor {
  const grad = p === 0 ? "0.0 * g_val" : `g_val * ${f32Lit(p)} * ${powExpr("x_val", p - 1, f32Lit)}`;
  return unary("powScalar", x, powExpr("x_val", p, f32Lit), grad);
}

/**
 * `max(a + b, 0)` for two f32 tensors of one shape (a residual sum followed by ReLU) in one kernel.
 * Backward is one kernel `g·[y > 0]` returned for both inputs (aliased); it reads the output, so the
 * pre-activation sum is never stored.
 */
export function addRelu(a: Tensor, b: Tensor): Tensor {
  checkF32("addRelu", a);
  checkF32("addRelu", b);
  if (!sameShape(a.shape, b.shape)) {
    throw new ShapeError("addRelu", `shapes differ: ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  }
  const out = map("addRelu", a.shape, [["a", a], ["b", b]], "max(a_val + b_val, 0.0)");
  return record("addRelu", [a, b], out, (g) => {
    const gx = map("addRelu.backward", a.shape, [["g", g], ["y", out]], "select(0.0, g_val, y_val > 0.0)");
    return [a.requiresGrad ? gx : null, b.requiresGrad ? gx : null];
  });
}
