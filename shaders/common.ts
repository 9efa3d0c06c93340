/**
 * WGSL helpers shared by the kernel builders.
 *
 * A 1-D problem larger than 65535 workgroups is laid out on a 2-D grid; kernels recover the flat
 * index from `global_invocation_id` and `num_workgroups`.
 */

/** Default workgroup size of elementwise kernels. */
export const WG = 256;

/** Workgroup counts `[x, y]` covering `n` invocations with `wg` per workgroup, each at most `max`. */
export function grid1d(n: number, wg = WG, max = 65535): [number, number, number] {
  const groups = Math.max(1, Math.ceil(n / wg));
  if (groups <= max) return [groups, 1, 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y, 1];
}

/** The WGSL header of a flat elementwise kernel: `i` is the flat index; returns early past `n`. */
export function flatMain(n: number, wg = WG): string {
  return `@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${wg}u;
  if (i >= ${n}u) { return; }`;
}

/**
 * A WGSL function returning a quiet NaN; kernels that write `NAN` include it. Tint (Dawn, Chrome) rejects a
 * NaN constant expression such as `bitcast<f32>(0x7fc00000u)` ("value nan cannot be represented as 'f32'"),
 * which Naga accepts; bits read through a `let` are a runtime value, which both accept.
 */
export const NAN_FN = "fn nan_f32() -> f32 { let bits = 0x7fc00000u; return bitcast<f32>(bits); }";

/** A quiet NaN as a WGSL expression (the kernel must include {@link NAN_FN}). */
export const NAN = "nan_f32()";

/** A WGSL f32 literal that round-trips `x` (handles integers, infinities are not allowed in WGSL). */
export function f32Lit(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`f32Lit: ${x} is not finite`);
  const s = String(Math.fround(x));
  return s.includes(".") || s.includes("e") ? `f32(${s})` : `${s}.0`;
}

/** WGSL storage element type for a tensor dtype. */
export function wgslType(dtype: "f32" | "i32" | "u32"): string {
  return dtype;
}

/**
 * Loop budget of one shader invocation: the total number of loop iterations it may run, summed over ALL
 * of its loops (sequential and nested: a nest of an outer loop of n and an inner one of m costs about
 * n·(m + 1)).
 *
 * Mesa's llvmpipe (the software adapter behind Deno's WebGPU here; `LP_MAX_TGSI_LOOP_ITERATIONS`) gives
 * each invocation ONE loop counter of 65,535 for the whole shader, decremented at the end of every
 * iteration of every loop and never reset; when it reaches zero every loop is left early, silently (no
 * error, a wrong result). The counter belongs to a SIMD group of 8 invocations and counts the group's
 * iterations (the most any of its invocations runs). Measured on Mesa 22.3.6, one invocation per group:
 *
 * - `for (k < 100000)`: 65,535 iterations; `k < 65535`: all of them; `k < 65536`: 65,535;
 * - two loops of 40,000 one after the other: 40,000 and 25,534;
 * - 300 × 300 nested: 65,101 inner iterations; 10 × 60,000: 65,533;
 * - a loop of 70,000 over an inner loop of 2 iterations (unrolled at compile time): all 140,000 — loops
 *   with a literal trip count of at most 32 and a small body are unrolled and cost nothing, but budgets
 *   here never count on that.
 *
 * Every kernel whose loops grow with the input keeps its count within this budget (splitting the work
 * over more invocations or passes), or its op throws an error naming the op and the size (see
 * `loopBudgetError`). Budgets are counted conservatively with {@link loopTrips}.
 */
export const MAX_LOOP_TRIPS = 65535;

/**
 * The budget one run of a loop of `iterations` iterations is charged: its iterations plus one (the pass
 * that fails the condition; llvmpipe's counter sometimes moves by one more than the iterations).
 */
export function loopTrips(iterations: number): number {
  return Math.max(0, iterations) + 1;
}

/**
 * Why `trips` (counted with {@link loopTrips}) exceed {@link MAX_LOOP_TRIPS}, or null when they do not;
 * `what` names the size, e.g. "a row of 70000 classes". Ops throw it as a `ShapeError` naming the op.
 */
export function loopBudgetError(trips: number, what: string): string | null {
  if (trips <= MAX_LOOP_TRIPS) return null;
  return `${what} needs ${trips} loop iterations in one shader invocation, more than the ${MAX_LOOP_TRIPS} ` +
    `after which the software adapter (llvmpipe) silently stops a shader's loops`;
}
