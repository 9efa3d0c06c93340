/**
 * The `--tiling` argument of `bench/gemm_bench.ts`: `register`, `shared`, or a register tiling written
 * `TMxTNxWXxWY` (threadM × threadN per invocation, WX × WY invocations per workgroup), optionally followed by
 * `,field=value` pairs that set the optional `GemmTiling` fields (e.g. `16x32x8x1,kStep=8`). Several tilings
 * separated by `;` are timed side by side.
 *
 * @module
 */
import { type GemmTiling, REGISTER_TILING, SHARED_TILING, validateTiling } from "../shaders/gemm.ts";

/** The tilings of a `--tiling` argument (an empty argument: none, i.e. the engine's own choice). */
export function parseTilings(arg: string): GemmTiling[] {
  return arg.split(";").map((s) => s.trim()).filter((s) => s).map(parseTiling);
}

/** One tiling (see the module comment); throws on a malformed one. */
export function parseTiling(spec: string): GemmTiling {
  const [head, ...fields] = spec.split(",").map((s) => s.trim());
  let t: GemmTiling;
  if (head === "register") t = { ...REGISTER_TILING };
  else if (head === "shared") t = { ...SHARED_TILING };
  else if (/^\d+x\d+x\d+x\d+$/.test(head)) {
    const [tm, tn, wx, wy] = head.split("x").map(Number);
    t = { ...REGISTER_TILING, threadM: tm, threadN: tn, tileM: tm * wy, tileN: tn * wx };
  } else throw new Error(`bad tiling "${spec}": expected register, shared or TMxTNxWXxWY[,field=value…]`);
  const record = t as unknown as Record<string, unknown>;
  for (const f of fields) {
    const m = /^(\w+)=(\w+)$/.exec(f);
    if (!m) throw new Error(`bad tiling field "${f}" in "${spec}" (field=value)`);
    const [, key, value] = m;
    record[key] = value === "true"
      ? true
      : value === "false"
      ? false
      : /^\d+$/.test(value)
      ? Number(value)
      : value;
  }
  validateTiling(t);
  return t;
}
