/**
 * WGSL builders for the optimiser: the fused SGD update over a parameter arena and the row
 * projections (sphere, ball) of the toy problems.
 *
 * @module
 */
import { f32Lit, flatMain } from "./common.ts";

/** Hyperparameters baked into the SGD kernel (they never change during a run). */
export interface SgdConstants {
  /** Momentum μ (0: no momentum buffer binding). */
  momentum: number;
  /** Weight decay added to the gradient. */
  weightDecay: number;
  /** Dampening after the first step. */
  dampening: number;
  /** Nesterov momentum. */
  nesterov: boolean;
}

/**
 * One SGD step (PyTorch order) over `n4` vec4s of the arenas `p` (parameters), `grad` and, with
 * momentum, `buf`: `g ← grad + wd·p; buf ← first ? g : μ·buf + (1−dampening)·g;
 * g ← nesterov ? g + μ·buf : buf; p ← p − lr·g`. The learning rate and the first-step flag are read
 * from `hyper = (lr, first, 0, 0)` so a new learning rate does not need a new pipeline. Bindings
 * (declared by the dispatch): `p` (read_write), `grad`, `hyper` (read), with momentum `buf` (read_write).
 */
export function sgdStepBody(n4: number, c: SgdConstants): string {
  const withMomentum = c.momentum !== 0;
  const decay = c.weightDecay !== 0 ? `g = fma(vec4<f32>(${f32Lit(c.weightDecay)}), p[i], g);` : "";
  const momentum = withMomentum
    ? `var b = g;
  if (hyper[1] == 0.0) { b = fma(vec4<f32>(${f32Lit(c.momentum)}), buf[i], ${f32Lit(1 - c.dampening)} * g); }
  buf[i] = b;
  ${c.nesterov ? `g = fma(vec4<f32>(${f32Lit(c.momentum)}), b, g);` : "g = b;"}`
    : "";
  return `${flatMain(n4)}
  var g = grad[i];
  ${decay}
  ${momentum}
  p[i] = p[i] - hyper[0] * g;
}`;
}

/**
 * In-place row projection of `x` [rows, d]: `'sphere'` sets every row's norm to `radius`
 * (a zero row stays zero), `'ball'` scales rows with norm > `radius` down to it (binding `x`, read_write).
 */
export function projectRowsBody(rows: number, d: number, radius: number, kind: "sphere" | "ball"): string {
  const scale = kind === "sphere"
    ? `select(0.0, ${f32Lit(radius)} / n, n > 0.0)`
    : `select(1.0, ${f32Lit(radius)} / n, n > ${f32Lit(radius)})`;
  return `${flatMain(rows, 64).replace("let i = ", "let r = ").replace("if (i >= ", "if (r >= ")}
  let base = r * ${d}u;
  var s = 0.0;
  for (var t = 0u; t < ${d}u; t++) { let v = x[base + t]; s = fma(v, v, s); }
  let n = sqrt(s);
  let scale = ${scale};
  for (var t = 0u; t < ${d}u; t++) { x[base + t] = x[base + t] * scale; }
}`;
}
