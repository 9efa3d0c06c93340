/**
 * One tiled GEMM template behind every matmul and convolution of the engine.
 *
 * The template loops over a batched `C[b] = A[b] · B[b]` of shape M×N×K. It never touches memory
 * itself: the caller supplies WGSL hook functions (in the spirit of TF.js WebGPU's
 * `matmul_packed_webgpu.ts` / `conv2d_mm_webgpu.ts`):
 *
 * - `readA(b, row, k) -> f32`  element A[b][row][k]
 * - `readB(b, k, col) -> f32`  element B[b][k][col]
 * - `writeC(b, row, col, v)`   stores C[b][row][col]
 * - optionally `readA4(b, row, k) -> vec4<f32>` = A[b][row][k..k+3] and
 *   `readB4(b, k, col) -> vec4<f32>` = B[b][k][col..col+3] (vectorised loads), and
 *   `writeC4(b, row, col, v: vec4<f32>)` storing C[b][row][col..col+3] (vectorised stores: a short
 *   contraction such as a 3-channel stem's K = 27 is otherwise bound by its scalar stores), and
 *   `readBT4(b, k, col) -> vec4<f32>` = B[b][k..k+3][col] (B stored contraction-major, as in A·Bᵀ): then
 *   the register kernel contracts with dot products of vec4s along k instead of outer products of
 *   vec4 rows, so both operands load one vec4 per four products of a row or column (on llvmpipe a
 *   vec4 load of contiguous floats costs about one scalar gather).
 *
 * Contract: the template handles the M, N, K edges. Hooks are only called with `row < M`, `col < N`
 * and `k < K` (out-of-range rows and columns are clamped and their results discarded), `readA4` only
 * with `k + 3 < K`, and `readB4` only with `col + 3 < N` (it is used only when N % 4 == 0, otherwise
 * the template builds it from clamped `readB` calls). So a matmul hook needs no bounds checks; a
 * convolution's im2col hook checks only its own zero padding.
 *
 * Two tilings: register blocking without workgroup memory (each invocation computes a
 * threadM×threadN block, fastest on software adapters such as llvmpipe) and workgroup-memory tiles
 * (tileM×tileN×tileK tiles staged in `var<workgroup>` arrays, for real GPUs: scalar here, or vec4 staging
 * and accumulation with `vec4: true` in `shaders/gemm_tiles.ts`).
 */
import { loopBudgetError, loopTrips, MAX_LOOP_TRIPS } from "./common.ts";
import { tileKernel, tileLoopTrips } from "./gemm_tiles.ts";

/** How the GEMM is split over workgroups and invocations. */
export interface GemmTiling {
  /** Output rows per workgroup (a multiple of threadM). */
  tileM: number;
  /** Output columns per workgroup (a multiple of threadN). */
  tileN: number;
  /** K depth staged per step (workgroup-memory path; the register path steps by 4). */
  tileK: number;
  /** Output rows per invocation. */
  threadM: number;
  /** Output columns per invocation (a multiple of 4). */
  threadN: number;
  /** Stage tiles of A and B in workgroup memory (real GPUs) or read straight from storage. */
  useWorkgroupMemory: boolean;
  /**
   * Workgroup tiles only: stage and accumulate vec4s (`readA4`/`readB4`/`writeC4`; `shaders/gemm_tiles.ts`)
   * instead of scalar hook calls.
   */
  vec4?: boolean;
  /**
   * Split the contraction into at least this many chunks (one GEMM of batch·S entries and a fixed-order
   * sum, `engine/ops/gemm_split.ts`), for long-K GEMMs with too few output tiles to fill a GPU. Honoured by
   * `dispatchGemm`; `gemmKernel` ignores it.
   */
  splitK?: number;
}

/** Contractions up to this length are fully unrolled by the register kernel. */
export const UNROLL_K = 32;

/** Most outputs per invocation of a fully unrolled register kernel (`fitTiling` shrinks larger blocks). */
export const UNROLL_MAX_BLOCK = 256;

/**
 * Register-blocked tiling for software adapters: each invocation computes a 16×16 block, 8×2 invocations per
 * workgroup (llvmpipe runs 8 invocations along x as SIMD lanes and each storage load as a loop over the lanes,
 * so the kernel is bound by its loads: a block of TM×TN outputs loads TM + TN values per TM·TN products; on a
 * 1024³ matmul per 2 CPU cores 16×16 measured 26 GFLOP/s against 8×8 14 and 4×4 8).
 *
 * Larger blocks run faster still ({@link REGISTER_TILING_32}: 1.1–1.5× per ResNet-18 conv pass) but compile
 * far slower: with a cold shader cache the first ResNet-18 step (batch 8) took 621 s with 32×32 blocks against
 * 84 s with these (llvmpipe, `MESA_SHADER_CACHE_DISABLE=true`, same loaded machine, 2026-12-07). So they are an
 * autotuner candidate (`deno task tune`), not the default.
 */
export const REGISTER_TILING: GemmTiling = {
  tileM: 32,
  tileN: 128,
  tileK: 4,
  threadM: 16,
  threadN: 16,
  useWorkgroupMemory: false,
};

/**
 * 32×32 outputs per invocation, one row of 8 invocations per workgroup: 1.3–1.5× {@link REGISTER_TILING} on a
 * 1024³ matmul on llvmpipe, 1.14–1.53× on every ResNet-18 3×3 conv pass past the stem (BENCHMARKS.md), at
 * about 3× the compile time of a conv pass (7× of a ResNet-18 step's kernels, the dot-product ones worst).
 * A tuner candidate.
 */
export const REGISTER_TILING_32: GemmTiling = {
  tileM: 32,
  tileN: 256,
  tileK: 4,
  threadM: 32,
  threadN: 32,
  useWorkgroupMemory: false,
};

/**
 * Shrinks a register tiling for a small problem so that SIMD lanes are not wasted: the per-invocation
 * block shrinks (down to 4) along a dimension the tile overshoots, then the workgroup reshapes; a problem
 * wider than one tile gets a block 4 columns wider or narrower if that pads fewer columns. A
 * contraction of `K` ≤ UNROLL_K (fully unrolled) gets a block of at most UNROLL_MAX_BLOCK outputs (the
 * larger side halved): a 64×64 block unrolled over K = 27 is ~30,000 lines of WGSL, minutes of llvmpipe
 * compile time. Workgroup-memory tilings are returned unchanged.
 */
export function fitTiling(t: GemmTiling, M: number, N: number, K = Infinity): GemmTiling {
  if (t.useWorkgroupMemory) return t;
  const f = { ...t };
  // A block 4 columns wider or narrower where that leaves fewer padded columns in the last tile (e.g. a
  // 64→64 conv's grad weight, N = 576: two tiles of 8·36 instead of three of 8·32 with 192 columns unused).
  if (K > UNROLL_K && N > f.tileN) {
    const wg = f.tileN / f.threadN;
    const waste = (tn: number) => Math.ceil(N / (wg * tn)) * wg * tn - N;
    let tn = f.threadN;
    for (const c of [f.threadN + 4, f.threadN - 4]) if (c >= 4 && waste(c) < waste(tn)) tn = c;
    f.threadN = tn;
    f.tileN = wg * tn;
  }
  while (K <= UNROLL_K && f.threadM * f.threadN > UNROLL_MAX_BLOCK) {
    if (f.threadN >= f.threadM && f.threadN % 8 === 0) {
      f.threadN /= 2;
      f.tileN /= 2;
    } else if (f.threadM % 2 === 0) {
      f.threadM /= 2;
      f.tileM /= 2;
    } else break;
  }
  while (f.tileN / 2 >= N && f.threadN > 4) {
    f.threadN /= 2;
    f.tileN /= 2;
  }
  while (f.tileM / 2 >= M && f.threadM > 4 && f.threadM % 2 === 0) {
    f.threadM /= 2;
    f.tileM /= 2;
  }
  while (f.tileN / 2 >= N && f.tileN > f.threadN) {
    f.tileN /= 2;
    f.tileM *= 2;
  }
  return f;
}

/**
 * Workgroup-memory tiling for real GPUs (the "gpu" strategy's): 64×64 tiles, 16×16 invocations of 4×4
 * each, K step 16, staged and accumulated as vec4s (`shaders/gemm_tiles.ts`; on llvmpipe 2.6× the scalar
 * kernel's rate on a 1024³ matmul).
 */
export const SHARED_TILING: GemmTiling = {
  tileM: 64,
  tileN: 64,
  tileK: 16,
  threadM: 4,
  threadN: 4,
  useWorkgroupMemory: true,
  vec4: true,
};

/** The same tiles with scalar hook calls and scalar workgroup arrays (the "gpu" strategy's first kernel). */
export const SHARED_SCALAR_TILING: GemmTiling = {
  tileM: 64,
  tileN: 64,
  tileK: 16,
  threadM: 4,
  threadN: 4,
  useWorkgroupMemory: true,
};

/** WGSL hook bodies and declarations that specialise the template to one operation. */
export interface GemmHooks {
  /**
   * Declarations placed before the hooks: constants, helpers (the bindings are declared by the dispatch,
   * `engine/program.ts`).
   */
  decls: string;
  /** Body of `fn readA(b: u32, row: u32, k: u32) -> f32`. */
  readA: string;
  /** Body of `fn readB(b: u32, k: u32, col: u32) -> f32`. */
  readB: string;
  /** Body of `fn writeC(b: u32, row: u32, col: u32, v: f32)`. */
  writeC: string;
  /** Optional body of `fn readA4(b: u32, row: u32, k: u32) -> vec4<f32>` (A[row][k..k+3]). */
  readA4?: string;
  /** Optional body of `fn readB4(b: u32, k: u32, col: u32) -> vec4<f32>` (B[k][col..col+3]). */
  readB4?: string;
  /** Optional body of `fn writeC4(b: u32, row: u32, col: u32, v: vec4<f32>)` (C[row][col..col+3]). */
  writeC4?: string;
  /**
   * Optional body of `fn readBT4(b: u32, k: u32, col: u32) -> vec4<f32>` (B[k..k+3][col]): selects the
   * dot-product register kernel (register tilings only; with `readA4`).
   */
  readBT4?: string;
}

/** A GEMM problem: sizes, batch count, hooks and tiling. */
export interface GemmSpec {
  /** Rows of C (and of A). */
  M: number;
  /** Columns of C (and of B). */
  N: number;
  /** Contraction length (0 writes zeros). */
  K: number;
  /** Independent GEMMs (dispatched along z; at most 65535). */
  batch: number;
  /** WGSL hooks that read A and B and write C. */
  hooks: GemmHooks;
  /** Tiling (register tilings are shrunk to the problem by `fitTiling`). */
  tiling: GemmTiling;
}

/** Generated kernel source and the workgroup counts to dispatch it with. */
export interface GemmKernel {
  /** Complete WGSL source with entry point `main`. */
  code: string;
  /** Workgroup counts [x, y, z] to dispatch. */
  workgroups: [number, number, number];
}

/** The device limits a tiling must respect (names as in `GPUSupportedLimits`). */
export interface GemmLimits {
  maxComputeInvocationsPerWorkgroup?: number;
  maxComputeWorkgroupSizeX?: number;
  maxComputeWorkgroupSizeY?: number;
  maxComputeWorkgroupStorageSize?: number;
}

/**
 * Why `t` does not fit a device with `limits`, or `null` when it does: invocations per workgroup, the
 * workgroup's x and y sizes, and (workgroup-memory tilings) the bytes of the two staged tiles. Missing
 * limits read as WebGPU's defaults.
 */
export function tilingMisfit(t: GemmTiling, limits: GemmLimits): string | null {
  const x = t.tileN / t.threadN;
  const y = t.tileM / t.threadM;
  const invocations = limits.maxComputeInvocationsPerWorkgroup ?? 256;
  if (x * y > invocations) return `${x * y} invocations per workgroup > ${invocations}`;
  if (x > (limits.maxComputeWorkgroupSizeX ?? 256)) return `workgroup x size ${x} > limit`;
  if (y > (limits.maxComputeWorkgroupSizeY ?? 256)) return `workgroup y size ${y} > limit`;
  const storage = limits.maxComputeWorkgroupStorageSize ?? 16384;
  const bytes = t.useWorkgroupMemory ? (t.tileM + t.tileN) * t.tileK * 4 : 0;
  if (bytes > storage) return `${bytes} bytes of workgroup memory > ${storage}`;
  return null;
}

/** Checks that a tiling is well formed; throws an Error naming the bad field. */
export function validateTiling(t: GemmTiling): void {
  const ints = [t.tileM, t.tileN, t.tileK, t.threadM, t.threadN];
  if (ints.some((v) => !Number.isInteger(v) || v < 1)) {
    throw new Error(`gemm: bad tiling ${JSON.stringify(t)}`);
  }
  if (t.threadN % 4 !== 0) throw new Error(`gemm: threadN ${t.threadN} must be a multiple of 4`);
  if (t.tileM % t.threadM !== 0 || t.tileN % t.threadN !== 0) {
    throw new Error(
      `gemm: tile ${t.tileM}×${t.tileN} not a multiple of the thread block ${t.threadM}×${t.threadN}`,
    );
  }
  const invocations = (t.tileM / t.threadM) * (t.tileN / t.threadN);
  if (invocations > 256) throw new Error(`gemm: ${invocations} invocations per workgroup (max 256)`);
  if (t.vec4 && !t.useWorkgroupMemory) throw new Error(`gemm: vec4 needs workgroup tiles`);
  if (t.splitK !== undefined && (!Number.isInteger(t.splitK) || t.splitK < 1)) {
    throw new Error(`gemm: bad splitK ${t.splitK}`);
  }
  if (t.useWorkgroupMemory) {
    if (t.tileK % 4 !== 0) throw new Error(`gemm: tileK ${t.tileK} must be a multiple of 4`);
    if ((t.tileM + t.tileN) * t.tileK * 4 > 16384) {
      throw new Error(`gemm: tiles exceed 16 KiB of workgroup memory`);
    }
  }
}

function hookFunctions(spec: GemmSpec): string {
  const { hooks, N } = spec;
  const readA4 = hooks.readA4 ??
    "return vec4<f32>(readA(b, row, k), readA(b, row, k + 1u), readA(b, row, k + 2u), readA(b, row, k + 3u));";
  const vecB = hooks.readB4 !== undefined && N % 4 === 0;
  const readB4 = vecB
    ? hooks.readB4!
    : `return vec4<f32>(readB(b, k, col), readB(b, k, min(col + 1u, ${N - 1}u)),
    readB(b, k, min(col + 2u, ${N - 1}u)), readB(b, k, min(col + 3u, ${N - 1}u)));`;
  return `${hooks.decls}
fn readA(b: u32, row: u32, k: u32) -> f32 {
  ${hooks.readA}
}
fn readB(b: u32, k: u32, col: u32) -> f32 {
  ${hooks.readB}
}
fn writeC(b: u32, row: u32, col: u32, v: f32) {
  ${hooks.writeC}
}
fn readA4(b: u32, row: u32, k: u32) -> vec4<f32> {
  ${readA4}
}
fn readB4(b: u32, k: u32, col: u32) -> vec4<f32> {
  ${readB4}
}${
    hooks.readBT4
      ? `
fn readBT4(b: u32, k: u32, col: u32) -> vec4<f32> {
  ${hooks.readBT4}
}`
      : ""
  }${
    hooks.writeC4 && N % 4 === 0
      ? `
fn writeC4(b: u32, row: u32, col: u32, v: vec4<f32>) {
  ${hooks.writeC4}
}`
      : ""
  }`;
}

function checkSpec(spec: GemmSpec): void {
  validateTiling(spec.tiling);
  const { M, N, K, batch } = spec;
  for (const [name, v] of [["M", M], ["N", N], ["K", K], ["batch", batch]] as const) {
    if (!Number.isInteger(v) || v < (name === "K" ? 0 : 1)) throw new Error(`gemm: ${name} = ${v}`);
  }
  if (batch > 65535) throw new Error(`gemm: batch ${batch} exceeds 65535 workgroups along z`);
}

/** Generates the WGSL of one GEMM and its workgroup counts. */
export function gemmKernel(spec: GemmSpec): GemmKernel {
  checkSpec(spec);
  const budget = loopBudgetError(gemmLoopTrips(spec.K, spec.tiling), `a contraction of K = ${spec.K}`);
  if (budget) throw new Error(`gemm: ${budget} (dispatchGemm splits it)`);
  if (spec.tiling.useWorkgroupMemory) {
    return spec.tiling.vec4 ? tileKernel(spec, hookFunctions(spec)) : sharedKernel(spec);
  }
  return registerKernel({ ...spec, tiling: fitTiling(spec.tiling, spec.M, spec.N, spec.K) });
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/**
 * Loop iterations of one invocation of the GEMM of contraction length `K` on tiling `t`, counted with
 * `loopTrips` against the budget `MAX_LOOP_TRIPS` (hooks must contain no loops): the register kernel's K
 * loop in steps of 4 and its K % 4 tail (none when K ≤ UNROLL_K); the workgroup-tile kernel's K loop in
 * steps of tileK, each step with its two staging loops and its tileK loop (the vec4 tile kernel: its
 * tileK/4 loop only, `tileLoopTrips`).
 */
export function gemmLoopTrips(K: number, t: GemmTiling): number {
  if (t.useWorkgroupMemory && t.vec4) return tileLoopTrips(K, t);
  if (t.useWorkgroupMemory) {
    const threads = (t.tileM / t.threadM) * (t.tileN / t.threadN);
    const loadsA = Math.ceil((t.tileM * t.tileK) / threads);
    const loadsB = Math.ceil((t.tileK * t.tileN) / threads);
    const steps = Math.ceil(K / t.tileK);
    return loopTrips(steps) + steps * (loopTrips(loadsA) + loopTrips(loadsB) + loopTrips(t.tileK));
  }
  if (K <= UNROLL_K) return 0;
  const tail = K % 4;
  return (K >= 4 ? loopTrips((K - tail) / 4) : 0) + (tail ? loopTrips(tail) : 0);
}

/**
 * The longest contraction one GEMM dispatch on tiling `t` may have within the loop budget: a multiple of 4
 * (register tilings: 262,136) or of tileK (workgroup tiles). `dispatchGemm` splits longer ones.
 */
export function gemmMaxK(t: GemmTiling): number {
  if (!t.useWorkgroupMemory) return 4 * (MAX_LOOP_TRIPS - 1);
  const perStep = gemmLoopTrips(2 * t.tileK, t) - gemmLoopTrips(t.tileK, t); // what one more K step costs
  return Math.floor((MAX_LOOP_TRIPS - 1) / perStep) * t.tileK;
}

/**
 * WGSL of the first row (column) of an invocation's block; a literal `0u` when one invocation covers
 * the whole axis, so that hook index arithmetic on it folds at compile time.
 */
function origin(wid: string, lid: string, tile: number, thread: number, wg: number, size: number): string {
  const local = wg > 1 ? ` + ${lid} * ${thread}u` : "";
  return tile >= size ? (local ? local.slice(3) : "0u") : `${wid} * ${tile}u${local}`;
}

/** Register blocking: invocation (x, y) computes rows y·TM.., columns x·TN.. straight from storage. */
function registerKernel(spec: GemmSpec): GemmKernel {
  const { M, N, K, batch, tiling } = spec;
  const TM = tiling.threadM;
  const TN4 = tiling.threadN / 4;
  const wgX = tiling.tileN / tiling.threadN;
  const wgY = tiling.tileM / tiling.threadM;
  const kMain = K - (K % 4);
  const lines: string[] = [];
  const I = range(TM);
  const J = range(TN4);
  for (const i of I) lines.push(`  let r${i} = min(row0 + ${i}u, ${M - 1}u);`);
  // Column groups start on multiples of 4 (N % 4 == 0 when readB4 is real); clamp to the last group.
  const lastGroup = N % 4 === 0 ? N - 4 : N - 1;
  const dot = spec.hooks.readBT4 !== undefined;
  const C = range(tiling.threadN);
  if (dot) { for (const c of C) lines.push(`  let cc${c} = min(col0 + ${c}u, ${N - 1}u);`); }
  else for (const j of J) lines.push(`  let c${j} = min(col0 + ${4 * j}u, ${Math.max(0, lastGroup)}u);`);
  for (const i of I) for (const j of J) lines.push(`  var acc${i}_${j} = vec4<f32>(0.0);`);
  // A short contraction (e.g. a 3-channel stem, K = 27) is unrolled: k becomes a constant in every
  // hook, so the im2col tap decompositions fold at compile time and there is no loop overhead.
  const unroll = K <= UNROLL_K;
  const kSteps = (from: number, to: number, step: number, body: () => void) => {
    if (unroll) {
      for (let k = from; k < to; k += step) {
        lines.push(`  {`, `    let k = ${k}u;`);
        body();
        lines.push(`  }`);
      }
    } else {
      lines.push(`  for (var k = ${from}u; k < ${to}u; k = k + ${step}u) {`);
      body();
      lines.push(`  }`);
    }
  };
  if (dot && kMain > 0) {
    // Dot products along k: column c of the block reads B[k..k+3][c] as one vec4.
    kSteps(0, kMain, 4, () => {
      for (const i of I) lines.push(`    let a${i} = readA4(bz, r${i}, k);`);
      for (const c of C) lines.push(`    let b${c} = readBT4(bz, k, cc${c});`);
      for (const i of I) {
        for (const j of J) {
          const d = range(4).map((l) => `dot(a${i}, b${4 * j + l})`).join(", ");
          lines.push(`    acc${i}_${j} = acc${i}_${j} + vec4<f32>(${d});`);
        }
      }
    });
  } else if (kMain > 0) {
    kSteps(0, kMain, 4, () => {
      for (const i of I) lines.push(`    let a${i} = readA4(bz, r${i}, k);`);
      for (const kk of range(4)) {
        for (const j of J) lines.push(`    let b${kk}_${j} = readB4(bz, k + ${kk}u, c${j});`);
      }
      const comps = ["x", "y", "z", "w"];
      for (const i of I) {
        for (const j of J) {
          let e = `acc${i}_${j}`;
          for (const kk of range(4)) e = `fma(vec4<f32>(a${i}.${comps[kk]}), b${kk}_${j}, ${e})`;
          lines.push(`    acc${i}_${j} = ${e};`);
        }
      }
    });
  }
  if (dot && K % 4 !== 0) {
    kSteps(kMain, K, 1, () => {
      for (const i of I) lines.push(`    let a${i} = readA(bz, r${i}, k);`);
      for (const c of C) lines.push(`    let b${c} = readB(bz, k, cc${c});`);
      for (const i of I) {
        for (const j of J) {
          const b4 = range(4).map((l) => `b${4 * j + l}`).join(", ");
          lines.push(`    acc${i}_${j} = fma(vec4<f32>(a${i}), vec4<f32>(${b4}), acc${i}_${j});`);
        }
      }
    });
  } else if (K % 4 !== 0) {
    kSteps(kMain, K, 1, () => {
      for (const i of I) lines.push(`    let a${i} = readA(bz, r${i}, k);`);
      for (const j of J) lines.push(`    let b${j} = readB4(bz, k, c${j});`);
      for (const i of I) {
        for (const j of J) lines.push(`    acc${i}_${j} = fma(vec4<f32>(a${i}), b${j}, acc${i}_${j});`);
      }
    });
  }
  const comps = ["x", "y", "z", "w"];
  const vecC = spec.hooks.writeC4 !== undefined && N % 4 === 0;
  for (const i of I) {
    lines.push(`  if (row0 + ${i}u < ${M}u) {`);
    for (const j of J) {
      if (vecC) {
        lines.push(
          `    if (col0 + ${4 * j}u < ${N}u) { writeC4(bz, row0 + ${i}u, col0 + ${4 * j}u, acc${i}_${j}); }`,
        );
        continue;
      }
      for (const l of range(4)) {
        const col = `col0 + ${4 * j + l}u`;
        lines.push(`    if (${col} < ${N}u) { writeC(bz, row0 + ${i}u, ${col}, acc${i}_${j}.${comps[l]}); }`);
      }
    }
    lines.push(`  }`);
  }
  const code = `${hookFunctions(spec)}

@compute @workgroup_size(${wgX}, ${wgY})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let bz = wid.z;
  let row0 = ${origin("wid.y", "lid.y", tiling.tileM, TM, wgY, M)};
  let col0 = ${origin("wid.x", "lid.x", tiling.tileN, tiling.threadN, wgX, N)};
  if (row0 >= ${M}u || col0 >= ${N}u) { return; }
${lines.join("\n")}
}`;
  return {
    code,
    workgroups: [Math.ceil(N / tiling.tileN), Math.ceil(M / tiling.tileM), batch],
  };
}

/** Workgroup-memory tiles: A[tileM][tileK] and B[tileK][tileN] staged per K step, then TM×TN per thread. */
function sharedKernel(spec: GemmSpec): GemmKernel {
  const { M, N, K, batch, tiling } = spec;
  const { tileM, tileN, tileK, threadM: TM, threadN: TN } = tiling;
  const wgX = tileN / TN;
  const wgY = tileM / TM;
  const threads = wgX * wgY;
  const loadsA = Math.ceil((tileM * tileK) / threads);
  const loadsB = Math.ceil((tileK * tileN) / threads);
  const I = range(TM);
  const J = range(TN);
  const code = `${hookFunctions(spec)}

var<workgroup> tileA: array<f32, ${tileM * tileK}>;
var<workgroup> tileB: array<f32, ${tileK * tileN}>;

@compute @workgroup_size(${wgX}, ${wgY})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let bz = wid.z;
  let tileRow = wid.y * ${tileM}u;
  let tileCol = wid.x * ${tileN}u;
  var acc: array<array<f32, ${TN}>, ${TM}>;
${I.map((i) => J.map((j) => `  acc[${i}][${j}] = 0.0;`).join("\n")).join("\n")}
  for (var k0 = 0u; k0 < ${K}u; k0 = k0 + ${tileK}u) {
    for (var l = 0u; l < ${loadsA}u; l = l + 1u) {
      let e = li + l * ${threads}u;
      if (e < ${tileM * tileK}u) {
        let r = tileRow + e / ${tileK}u;
        let k = k0 + e % ${tileK}u;
        var v = 0.0;
        if (r < ${M}u && k < ${K}u) { v = readA(bz, r, k); }
        tileA[e] = v;
      }
    }
    for (var l = 0u; l < ${loadsB}u; l = l + 1u) {
      let e = li + l * ${threads}u;
      if (e < ${tileK * tileN}u) {
        let k = k0 + e / ${tileN}u;
        let c = tileCol + e % ${tileN}u;
        var v = 0.0;
        if (k < ${K}u && c < ${N}u) { v = readB(bz, k, c); }
        tileB[e] = v;
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${tileK}u; kk = kk + 1u) {
${I.map((i) => `      let a${i} = tileA[(lid.y * ${TM}u + ${i}u) * ${tileK}u + kk];`).join("\n")}
${J.map((j) => `      let b${j} = tileB[kk * ${tileN}u + lid.x * ${TN}u + ${j}u];`).join("\n")}
${
    I.map((i) => J.map((j) => `      acc[${i}][${j}] = fma(a${i}, b${j}, acc[${i}][${j}]);`).join("\n")).join(
      "\n",
    )
  }
    }
    workgroupBarrier();
  }
${
    I.map((i) =>
      J.map((j) =>
        `  { let r = tileRow + lid.y * ${TM}u + ${i}u; let c = tileCol + lid.x * ${TN}u + ${j}u;
    if (r < ${M}u && c < ${N}u) { writeC(bz, r, c, acc[${i}][${j}]); } }`
      ).join("\n")
    ).join("\n")
  }
}`;
  return { code, workgroups: [Math.ceil(N / tileN), Math.ceil(M / tileM), batch] };
}
