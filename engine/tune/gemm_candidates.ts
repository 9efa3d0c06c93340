/**
 * The candidate kernels of one GEMM: the tilings the autotuner (`engine/tune/`) may time for a GEMM of a
 * given size and set of hooks. Every candidate computes the same product (results differ only in float32
 * summation order); each is tested against float64 in `tests/ops_matmul_test.ts` and the conv tests.
 *
 * A candidate is identified by `tilingId`, a string derived from every field of its tiling, so that a cached
 * winner names exactly one kernel and a tiling added later never collides with an old id.
 *
 * @module
 */
import {
  fitTiling,
  type GemmHooks,
  type GemmLimits,
  type GemmTiling,
  REGISTER_TILING,
  REGISTER_TILING_32,
  SHARED_SCALAR_TILING,
  SHARED_TILING,
  tilingMisfit,
  validateTiling,
} from "../../shaders/gemm.ts";
import type { KernelStrategy } from "../strategy.ts";

/** The size of one GEMM dispatch. */
export interface GemmSizes {
  /** Rows of C. */
  M: number;
  /** Columns of C. */
  N: number;
  /** Contraction length. */
  K: number;
  /** GEMMs along z. */
  batch: number;
}

/** One kernel the tuner may pick for a GEMM. */
export interface GemmCandidate {
  /** Stable identifier (see `tilingId`). */
  id: string;
  /** The tiling the GEMM template generates the kernel with. */
  tiling: GemmTiling;
}

/** A stable identifier of `t` from all its fields (fields added to `GemmTiling` later are included). */
export function tilingId(t: GemmTiling): string {
  const base = `${
    t.useWorkgroupMemory ? "wg" : "reg"
  }${t.tileM}x${t.tileN}x${t.tileK}t${t.threadM}x${t.threadN}`;
  const known = new Set(["tileM", "tileN", "tileK", "threadM", "threadN", "useWorkgroupMemory"]);
  const extra = Object.entries(t)
    .filter(([k, v]) => !known.has(k) && v !== undefined && v !== false)
    .sort(([a], [b]) => a < b ? -1 : 1)
    .map(([k, v]) => `${k}=${v}`);
  return extra.length ? `${base},${extra.join(",")}` : base;
}

/** The id of `t` as a candidate for an M×N GEMM (register tilings are shrunk to the problem first). */
export function candidateId(t: GemmTiling, sizes: GemmSizes): string {
  return tilingId(t.useWorkgroupMemory ? t : fitTiling(t, sizes.M, sizes.N, sizes.K));
}

/**
 * Register-blocked tilings: the heuristic `REGISTER_TILING` (16×16 per invocation, 8×2 invocations), the 32×32
 * blocks of `REGISTER_TILING_32` (8×1 invocations) and a 16×32 block. On
 * llvmpipe such a kernel is bound by its storage loads (each a loop over the SIMD lanes), so larger blocks,
 * with fewer loads per product, run faster but compile slower. Per 2 CPU cores on a 1024³ matmul
 * (`bench/gemm_bench.ts --tiling`, BENCHMARKS.md): 16×32 blocks 1.3×, 32×32 1.3–1.5×, 32×64 1.5×, 64×64
 * 1.7× the 16×16 blocks of the earlier heuristic; but a conv pass's kernel compiles in about 1 s with 32×32
 * blocks and in 90–100 s with 32×64 ones, so nothing larger than 32×32 is a candidate, and 32×32 is a candidate rather than the
 * heuristic (see `REGISTER_TILING`: a cold-cache ResNet-18 step compiles 7× longer with it).
 */
export const REGISTER_VARIANTS: GemmTiling[] = [
  REGISTER_TILING,
  REGISTER_TILING_32,
  { tileM: 32, tileN: 256, tileK: 4, threadM: 16, threadN: 32, useWorkgroupMemory: false },
];

/**
 * Workgroup-memory tilings beside `SHARED_TILING` (vec4 64×64×16, 4×4 per invocation): larger vec4 tiles
 * for large GEMMs (more products per staged byte), a small one for GEMMs with few output tiles, and the
 * scalar kernel (the one kernel whose A staging is four scalar reads anyway, e.g. a transposed A, may
 * lose nothing by it). All fit WebGPU's default limits (≤ 12 KiB of workgroup memory, ≤ 256 invocations).
 */
const SHARED_VARIANTS: GemmTiling[] = [
  SHARED_TILING,
  { tileM: 128, tileN: 64, tileK: 16, threadM: 8, threadN: 4, useWorkgroupMemory: true, vec4: true },
  { tileM: 128, tileN: 128, tileK: 8, threadM: 8, threadN: 8, useWorkgroupMemory: true, vec4: true },
  { tileM: 32, tileN: 32, tileK: 32, threadM: 4, threadN: 4, useWorkgroupMemory: true, vec4: true },
  SHARED_SCALAR_TILING,
];

/** Output tiles (× batch) below which a long contraction also gets split-K candidates. */
const SPLIT_MAX_TILES = 16;

/** Shortest contraction chunk of a split-K candidate. */
const SPLIT_MIN_K = 256;

/** Split factors worth timing for `sizes` on tiling `t`: long K and too few output tiles to fill a GPU. */
export function splitKFactors(sizes: GemmSizes, t: GemmTiling): number[] {
  const f = t.useWorkgroupMemory ? t : fitTiling(t, sizes.M, sizes.N, sizes.K);
  const tiles = Math.ceil(sizes.M / f.tileM) * Math.ceil(sizes.N / f.tileN) * sizes.batch;
  if (tiles >= SPLIT_MAX_TILES) return [];
  return [4, 16].filter((S) => sizes.K / S >= SPLIT_MIN_K && sizes.batch * S <= 65535);
}

/** What candidates depend on besides the GEMM: the device's limits and the kernel strategy. */
export interface CandidateContext {
  /** The device limits (names as in `GPUSupportedLimits`). */
  limits: GemmLimits;
  /** The kernel family the op's routes were generated for. */
  strategy: KernelStrategy;
}

/**
 * The candidates for a GEMM of `sizes` with `hooks`, the heuristic's `preferred` tiling first (so that a
 * time cap that stops the tuner early keeps it), without duplicates (after `fitTiling` shrinks a register
 * tiling to the problem) and without tilings the device's limits cannot hold.
 */
export function gemmCandidates(
  sizes: GemmSizes,
  _hooks: GemmHooks,
  preferred: GemmTiling,
  ctx: CandidateContext,
): GemmCandidate[] {
  const out: GemmCandidate[] = [];
  const seen = new Set<string>();
  const add = (t: GemmTiling) => {
    try {
      validateTiling(t);
    } catch {
      return;
    }
    if (tilingMisfit(t, ctx.limits) !== null) return;
    const id = candidateId(t, sizes);
    if (seen.has(id)) return;
    seen.add(id);
    out.push({ id, tiling: t });
  };
  add(preferred);
  for (const t of REGISTER_VARIANTS) add(t);
  for (const t of SHARED_VARIANTS) add(t);
  // Split-K of the heuristic's tiling for long-K GEMMs with few output tiles (e.g. the grad weight of deep
  // layers at a small batch): the chunks fill more of the GPU, a fixed-order sum adds them.
  if (!preferred.splitK) {
    for (const S of splitKFactors(sizes, preferred)) {
      add({ ...preferred, splitK: S });
    }
  }
  return out;
}
