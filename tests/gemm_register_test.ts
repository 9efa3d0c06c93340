/**
 * The register-blocked GEMM kernel with large per-invocation blocks (more than 16×16 outputs: the software
 * heuristic's 32×32 and the 16×32 candidate of `engine/tune/gemm_candidates.ts`) against float64, forced with `setGemmTiling`: partial tiles in M and N with the block
 * left whole (N > half the tile; N just past a tile, where `fitTiling` widens the block by 4 columns),
 * K % 4 ≠ 0 (the scalar tail), a contraction just past the full-unroll limit
 * and one below it (where `fitTiling` caps the block at `UNROLL_MAX_BLOCK` outputs), K past the loop budget
 * (split-K by `gemmMaxK`), all four transposes (Aᵀ: scalar A reads; A·Bᵀ: the dot-product kernel), a batch
 * of 3 with a broadcast operand, and conv forward, grad input and grad weight with more output channels
 * than one block. Outputs are poisoned (NaN) first, so an element no invocation wrote fails.
 *
 * Portable (`tests/harness.ts`): the Dawn run compiles the same kernels with Tint on SwiftShader.
 */
import { assertClose, randomArray, setup } from "./util.ts";
import { test } from "./harness.ts";
import { tensor } from "../engine/tensor.ts";
import { matmul, setGemmTiling } from "../engine/ops/matmul.ts";
import { conv2d } from "../engine/ops/conv.ts";
import { gpu } from "../engine/gpu.ts";
import {
  fitTiling,
  gemmMaxK,
  type GemmTiling,
  REGISTER_TILING,
  REGISTER_TILING_32,
  UNROLL_K,
  UNROLL_MAX_BLOCK,
} from "../shaders/gemm.ts";
import { REGISTER_VARIANTS, tilingId } from "../engine/tune/gemm_candidates.ts";
import { matmulRef } from "./reference/matmul_ref.ts";
import {
  conv2dGradInputRef,
  conv2dGradWeightRef,
  conv2dRef,
  type ConvDims,
  convOut,
} from "./reference/conv_ref.ts";

/** Tolerance of an f32 dot product of length K with |terms| ≤ 1. */
const tol = (K: number) => ({ rtol: 1e-4, atol: 1e-4 * Math.sqrt(Math.max(1, K)) });

/** The large-block tilings: every register candidate and the heuristic with more than 16×16 outputs. */
const LARGE: GemmTiling[] = (() => {
  const all = new Map<string, GemmTiling>();
  for (const t of [REGISTER_TILING, ...REGISTER_VARIANTS]) {
    if (!t.useWorkgroupMemory && t.threadM * t.threadN > 256) all.set(tilingId(t), t);
  }
  return [...all.values()];
})();

interface MatmulCase {
  M: number;
  N: number;
  K: number;
  batch?: number;
  transA?: boolean;
  transB?: boolean;
  /** A is one matrix broadcast over the batch. */
  broadcastA?: boolean;
}

/** Cases for tiling `t` (sizes relative to its tile, so that its block stays whole). */
function matmulCases(t: GemmTiling): MatmulCase[] {
  const { tileM, tileN } = t;
  return [
    { M: tileM + 5, N: tileN + 12, K: 45 }, // partial tiles (vec4 stores, N % 4 = 0), K % 4 = 1
    { M: 2 * tileM - 3, N: tileN - 7, K: 50, transA: true }, // Aᵀ (scalar reads), N odd: clamped columns
    { M: tileM + 1, N: tileN / 2 + 9, K: UNROLL_K + 1, transB: true }, // A·Bᵀ: dot kernel, just past unroll
    { M: tileM + 3, N: tileN + 4, K: 38, transA: true, transB: true },
    { M: tileM - 1, N: tileN / 2 + 4, K: UNROLL_K - 5 }, // unrolled: the block capped by fitTiling
    { M: 7, N: tileN / 2 + 1, K: 30, batch: 3, broadcastA: true, transB: true },
    { M: 9, N: tileN / 2 + 20, K: 61, batch: 3 },
  ];
}

function transpose(a: ArrayLike<number>, r: number, c: number): Float64Array {
  const out = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = a[i * c + j];
  return out;
}

async function checkMatmul(m: MatmulCase, seed: number, id: string): Promise<void> {
  const { M, N, K } = m;
  const batch = m.batch ?? 1;
  const [transA, transB] = [m.transA ?? false, m.transB ?? false];
  const aBatched = batch > 1 && !m.broadcastA;
  const a = randomArray((aBatched ? batch : 1) * M * K, seed);
  const b = randomArray(batch * K * N, seed + 1);
  const aShape = transA ? [K, M] : [M, K];
  const bShape = transB ? [N, K] : [K, N];
  const ta = tensor(a, aBatched ? [batch, ...aShape] : aShape);
  const tb = tensor(b, batch > 1 ? [batch, ...bShape] : bShape);
  const c = matmul(ta, tb, { transA, transB });
  const ref = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    const az = aBatched ? a.subarray(z * M * K, (z + 1) * M * K) : a;
    const bz = b.subarray(z * K * N, (z + 1) * K * N);
    ref.set(
      matmulRef(transA ? transpose(az, K, M) : az, transB ? transpose(bz, N, K) : bz, { M, N, K }),
      z * M * N,
    );
  }
  assertClose(await c.toArray(), ref, { ...tol(K), label: `${id} ${JSON.stringify(m)}` });
  [ta, tb, c].forEach((t) => t.dispose());
}

async function checkConv(d: ConvDims, seed: number, id: string): Promise<void> {
  const [OH, OW] = convOut(d);
  const x = randomArray(d.N * d.C * d.H * d.W, seed);
  const w = randomArray(d.O * d.C * d.KH * d.KW, seed + 1);
  const dy = randomArray(d.N * d.O * OH * OW, seed + 2);
  const tx = tensor(x, [d.N, d.C, d.H, d.W], { requiresGrad: true });
  const tw = tensor(w, [d.O, d.C, d.KH, d.KW], { requiresGrad: true });
  const y = conv2d(tx, tw, { stride: d.stride, padding: d.pad });
  const name = `${id} ${JSON.stringify(d)}`;
  assertClose(await y.toArray(), conv2dRef(x, w, d), { ...tol(d.C * d.KH * d.KW), label: `forward ${name}` });
  y.backward(tensor(dy, y.shape));
  assertClose(await tx.grad!.toArray(), conv2dGradInputRef(dy, w, d), {
    ...tol(d.O * d.KH * d.KW),
    label: `grad input ${name}`,
  });
  assertClose(await tw.grad!.toArray(), conv2dGradWeightRef(dy, x, d), {
    ...tol(d.N * OH * OW),
    label: `grad weight ${name}`,
  });
  [tx, tw, y].forEach((t) => t.dispose());
}

/** Conv geometries with more output channels and pixels than one large block. */
const CONVS: ConvDims[] = [
  { N: 2, C: 8, H: 12, W: 11, O: 68, KH: 3, KW: 3, stride: 1, pad: 1 }, // channels-last routes, O > 64
  { N: 2, C: 12, H: 13, W: 9, O: 36, KH: 3, KW: 3, stride: 2, pad: 1 }, // stride 2, odd sizes
];

test({
  name: "gemm register blocks: the large-block tilings exist; fitTiling caps unrolled blocks, fits wide N",
  fn() {
    if (LARGE.length < 2) throw new Error(`only ${LARGE.length} large register tilings`);
    // N = 576 (a 64→64 conv's grad weight): two tiles of 8·36 columns, not three of 8·32 (192 unused).
    const wide = fitTiling(REGISTER_TILING_32, 64, 576, 8192);
    if (wide.threadN !== 36 || wide.tileN !== 288) throw new Error(`N = 576: ${JSON.stringify(wide)}`);
    for (const t of LARGE) {
      // A short contraction is unrolled: its block must be capped.
      const f = fitTiling(t, 4096, 4096, UNROLL_K);
      if (f.threadM * f.threadN > UNROLL_MAX_BLOCK) {
        throw new Error(`${tilingId(t)}: unrolled block ${f.threadM}×${f.threadN} > ${UNROLL_MAX_BLOCK}`);
      }
      if (JSON.stringify(fitTiling(t, 4096, 4096, UNROLL_K + 1)) !== JSON.stringify(t)) {
        throw new Error(`${tilingId(t)}: a looped contraction changed the block`);
      }
    }
  },
});

for (const t of LARGE) {
  const id = tilingId(t);
  test({
    name: `gemm register block ${id}: partial tiles, transposes, batch, unroll cap, conv passes vs float64`,
    dawn: "once",
    async fn() {
      await setup();
      if (!gpu().poison) throw new Error("outputs are not poisoned");
      setGemmTiling(t);
      try {
        let seed = 7000;
        for (const m of matmulCases(t)) {
          await checkMatmul(m, seed, id);
          seed += 2;
        }
        for (const d of CONVS) {
          await checkConv(d, seed, id);
          seed += 3;
        }
      } finally {
        setGemmTiling(null);
      }
    },
  });
}

test({
  name: "gemm register blocks: a contraction past the loop budget (split-K by gemmMaxK) vs float64",
  dawn: "once",
  async fn() {
    await setup();
    try {
      for (const t of LARGE) {
        setGemmTiling(t);
        // Two chunks, the second odd and short (K % 4 = 3).
        await checkMatmul({ M: 3, N: 6, K: gemmMaxK(t) + 7 }, 8000, tilingId(t));
      }
    } finally {
      setGemmTiling(null);
    }
  },
});
