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
