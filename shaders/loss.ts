/**
 * WGSL builders for the losses and the sphere normalisation: shapes are baked into the source.
 *
 * Row kernels run one invocation per row with a serial loop over the row (no workgroup memory: on
 * the software adapter barriers are slow, and rows are independent); elementwise kernels use the flat
 * layout of `flatMain`. The only workgroup reduction is the final sum of per-row losses.
 *
 * Measured on llvmpipe for the SC row kernel (b = 256 / 1024 / 4096): one invocation per row
 * 2.7 / 7.1 / 186 ms, one 64-wide workgroup per row with tree reductions 5.0 / 22.6 / 286 ms.
 *
 * @module
 */
import { f32Lit, flatMain, NAN, NAN_FN } from "./common.ts";

/** Workgroup size of the row kernels. */
export const ROW_WG = 64;

/** Header of a row kernel: `r` is the row index; returns early past `rows`. */
export function rowMain(rows: number, wg = ROW_WG): string {
  return flatMain(rows, wg).replace("let i = ", "let r = ").replace("if (i >= ", "if (r >= ");
}

/**
 * Sphere normalisation, forward: `z = ρ·u/max(‖u‖, eps)` for `rows` rows of length `d`.
 * Writes `z` and the guarded norm of each row (kept for the backward).
 */
export function sphereForwardBody(rows: number, d: number, radius: number, eps: number): string {
  return `${rowMain(rows)}
  let base = r * ${d}u;
  var s = 0.0;
  for (var t = 0u; t < ${d}u; t++) { let v = u[base + t]; s = fma(v, v, s); }
  let n = max(sqrt(s), ${f32Lit(eps)});
  norms[r] = n;
  let scale = ${f32Lit(radius)} / n;
  for (var t = 0u; t < ${d}u; t++) { z[base + t] = u[base + t] * scale; }
}`;
}

/** Sphere normalisation, backward: `du = (ρ/n)(dz − ẑ⟨ẑ, dz⟩)`, `ẑ = u/n`, `n` the saved guarded norm. */
export function sphereBackwardBody(rows: number, d: number, radius: number): string {
  return `${rowMain(rows)}
  let base = r * ${d}u;
  let inv = 1.0 / norms[r];
  var dot = 0.0;
  for (var t = 0u; t < ${d}u; t++) { dot = fma(u[base + t] * inv, dz[base + t], dot); }
  let scale = ${f32Lit(radius)} * inv;
  for (var t = 0u; t < ${d}u; t++) {
    du[base + t] = scale * (dz[base + t] - u[base + t] * inv * dot);
  }
}`;
}

/**
 * Cross-entropy, per row: `loss_r = LSE(x_r) − x_r[y_r]` with a max-subtracted log-sum-exp; also
 * writes `LSE(x_r)` for the backward. A label outside `[0, k)` writes NaN to both.
 */
export function ceRowsBody(rows: number, k: number): string {
  return `${NAN_FN}
${rowMain(rows)}
  let base = r * ${k}u;
  var m = x[base];
  for (var c = 1u; c < ${k}u; c++) { m = max(m, x[base + c]); }
  var s = 0.0;
  for (var c = 0u; c < ${k}u; c++) { s += exp(x[base + c] - m); }
  let l = m + log(s);
  let y = labels[r];
  if (y < 0i || y >= ${k}i) {
    loss[r] = ${NAN};
    lse[r] = ${NAN};
    return;
  }
  loss[r] = l - x[base + u32(y)];
  lse[r] = l;
}`;
}

/**
 * Cross-entropy backward, elementwise over `[rows, k]`: `dx = g·scale·(softmax(x_r) − onehot(y_r))`,
 * `g` the scalar upstream gradient. NaN rows (bad labels) stay NaN through the saved LSE.
 */
export function ceBackwardBody(rows: number, k: number, scale: number): string {
  return `${flatMain(rows * k)}
  let r = i / ${k}u;
  let c = i32(i % ${k}u);
  let onehot = select(0.0, 1.0, labels[r] == c);
  dx[i] = g[0] * ${f32Lit(scale)} * (exp(x[i] - lse[r]) - onehot);
}`;
}

/**
 * `out[0] = scale · Σ v` over `n` values: one workgroup of 64 strided partial sums and a tree
 * (rounding error grows with n/64 + 6 additions instead of n).
 */
export function sumBody(n: number, scale: number): string {
  return `var<workgroup> part: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) l: u32) {
  var s = 0.0;
  for (var t = l; t < ${n}u; t += 64u) { s += v[t]; }
  part[l] = s;
  workgroupBarrier();
  for (var w = 32u; w > 0u; w >>= 1u) {
    if (l < w) { part[l] += part[l + w]; }
    workgroupBarrier();
  }
  if (l == 0u) { out[0] = part[0] * ${f32Lit(scale)}; }
}`;
}

/**
 * Supervised contrastive loss (Eq. 6), per anchor row `i` of the Gram matrix `G` [b, b]:
 * `LSE_i = log Σ_{k≠i} exp G_ik` (max-subtracted, the anchor masked), `P_i = #{j ≠ i: y_j = y_i}`,
 * `loss_i = LSE_i − (1/P_i) Σ_{j∈pos(i)} G_ij`, or 0 when `P_i = 0`. Also writes `stats[i] =
 * (LSE_i, 1/P_i)` (`(0, 0)` without positives) for the backward.
 */
export function supConRowsBody(b: number): string {
  return `${rowMain(b)}
  let base = r * ${b}u;
  let y = labels[r];
  var m = -3.0e38;
  var count = 0u;
  var pos = 0.0;
  for (var k = 0u; k < ${b}u; k++) {
    if (k == r) { continue; }
    let g = G[base + k];
    m = max(m, g);
    if (labels[k] == y) { count += 1u; pos += g; }
  }
  if (count == 0u) {
    loss[r] = 0.0;
    stats[r] = vec2<f32>(0.0, 0.0);
    return;
  }
  var s = 0.0;
  for (var k = 0u; k < ${b}u; k++) {
    if (k == r) { continue; }
    s += exp(G[base + k] - m);
  }
  let lse = m + log(s);
  let invP = 1.0 / f32(count);
  loss[r] = lse - pos * invP;
  stats[r] = vec2<f32>(lse, invP);
}`;
}

/**
 * Supervised contrastive loss backward: the symmetrised gradient `S = dG + dGᵀ` [b, b] (so that
 * `dz = S·z`), elementwise from the saved row statistics, with `dG_ik = g·([P_i>0]·softmax_{k≠i}(G_i)_k
 * − [k∈pos(i)]/P_i)` and `dG_ii = 0`. `G` is symmetric, so `G_ki` is read as `G_ik`.
 */
export function supConBackwardBody(b: number): string {
  return `${flatMain(b * b)}
  let r = i / ${b}u;
  let k = i % ${b}u;
  if (r == k) { S[i] = 0.0; return; }
  let g = G[i];
  let si = stats[r];
  let sk = stats[k];
  var v = 0.0;
  if (si.y > 0.0) { v += exp(g - si.x); }
  if (sk.y > 0.0) { v += exp(g - sk.x); }
  if (labels[r] == labels[k]) { v -= si.y + sk.y; }
  S[i] = gOut[0] * v;
}`;
}
