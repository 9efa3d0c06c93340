/**
 * Every GEMM candidate the autotuner may pick (`gemmCandidates`, `engine/tune/gemm_candidates.ts`: register
 * blocks, workgroup tiles scalar and vec4, split-K) against float64 references, forced one at a time with
 * `setGemmTiling`: matmuls of odd M, N, K (no tile multiple), all four transpose combinations, a batch of 3,
 * a contraction past the loop budget (vec4 tiles: split-K by the budget), and conv forward, grad input and
 * grad weight on geometries that take every route of the op (3-channel stem, stride 2 with padding, 1×1
 * stride 1 and 2, vec4 channel counts). Outputs are poisoned (NaN) first, so an element no kernel wrote fails.
 *
 * Tolerances: an f32 sum of K products of values in [-1, 1) against the float64 sum, |error| ≤ 1e-4·√K +
 * 1e-4·|expected| (the same as ops_matmul_test and ops_conv_test; the observed error is ~1e-6·√K).
 *
 * Portable (`tests/harness.ts`): the Dawn run compiles and runs the same candidates on SwiftShader with Tint.
 * The candidates are forced tilings, so the kernel strategy does not change what runs: in the Dawn run each
 * case runs under the first strategy only.
 */
import { assertClose, randomArray, setup } from "./util.ts";
import { test } from "./harness.ts";
import { tensor } from "../engine/tensor.ts";
import { matmul, setGemmTiling } from "../engine/ops/matmul.ts";
import { conv2d } from "../engine/ops/conv.ts";
import { gpu } from "../engine/gpu.ts";
import { gemmMaxK, type GemmTiling, REGISTER_TILING, SHARED_TILING, tilingMisfit } from "../shaders/gemm.ts";
import { gemmCandidates, type GemmSizes, tilingId } from "../engine/tune/gemm_candidates.ts";
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

const HOOKS = { decls: "", readA: "", readB: "", writeC: "" };

/** Every candidate of a GEMM of `sizes` under both strategies' heuristics (WebGPU's default limits). */
function candidatesOf(sizes: GemmSizes): GemmTiling[] {
  const out = new Map<string, GemmTiling>();
  for (const [preferred, strategy] of [[REGISTER_TILING, "software"], [SHARED_TILING, "gpu"]] as const) {
    for (const c of gemmCandidates(sizes, HOOKS, preferred, { limits: {}, strategy })) {
      out.set(tilingId(c.tiling), c.tiling);
    }
  }
  return [...out.values()];
}

/** One matmul case: sizes, transposes, which operands carry the batch. */
interface MatmulCase {
  M: number;
  N: number;
  K: number;
  batch?: number;
  transA?: boolean;
  transB?: boolean;
  aBatched?: boolean;
  bBatched?: boolean;
}

const MATMULS: MatmulCase[] = [
  { M: 37, N: 53, K: 29 }, // odd everything, K % 4 ≠ 0 (scalar A tail)
  { M: 35, N: 141, K: 44, transA: true }, // Aᵀ: A staged from scalar reads; N odd
  { M: 19, N: 45, K: 32, transB: true }, // A·Bᵀ: the register tilings' dot-product kernel
  { M: 130, N: 68, K: 70, transA: true, transB: true }, // several tiles along M and N, vec4 stores
  { M: 9, N: 12, K: 20, batch: 3, aBatched: true, bBatched: true }, // batch along z, N % 4 == 0
  { M: 6, N: 13, K: 21, batch: 3, aBatched: false, bBatched: true, transB: true }, // broadcast A
  { M: 5, N: 7, K: 4100 }, // long K, one output tile: the split-K candidates (4 and 16 chunks)
];

/** Conv geometries: every route of forward, grad input and grad weight on the workgroup and register tilings. */
const CONVS: ConvDims[] = [
  { N: 2, C: 3, H: 9, W: 8, O: 8, KH: 3, KW: 3, stride: 1, pad: 1 }, // 3-channel stem (K = 27, padded to 28)
  { N: 2, C: 5, H: 9, W: 7, O: 6, KH: 3, KW: 3, stride: 2, pad: 1 }, // stride 2, odd sizes, 4 grad-input phases
  { N: 2, C: 4, H: 7, W: 9, O: 8, KH: 1, KW: 1, stride: 2, pad: 0 }, // 1×1 stride 2: subsample, zeroed phases
  { N: 3, C: 8, H: 8, W: 8, O: 12, KH: 3, KW: 3, stride: 1, pad: 1 }, // vec4 channels (channels-last routes)
  { N: 2, C: 8, H: 4, W: 4, O: 4, KH: 1, KW: 1, stride: 1, pad: 0 }, // 1×1 stride 1: x itself is B
];

/** Every candidate of the matmul cases (the conv tests run them all too). */
const CANDIDATES = (() => {
  const all = new Map<string, GemmTiling>();
  for (const m of MATMULS) {
    for (const t of candidatesOf({ M: m.M, N: m.N, K: m.K, batch: m.batch ?? 1 })) all.set(tilingId(t), t);
  }
  return [...all.entries()];
})();

/** Transposes a row-major [r, c] matrix. */
function transpose(a: ArrayLike<number>, r: number, c: number): Float64Array {
  const out = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = a[i * c + j];
  return out;
}

/** One matmul on the forced tiling against float64 (a batched case reference built per batch entry). */
async function checkMatmul(m: MatmulCase, seed: number, id: string): Promise<void> {
  const { M, N, K } = m;
  const batch = m.batch ?? 1;
  const [transA, transB] = [m.transA ?? false, m.transB ?? false];
  const aBatched = batch > 1 && (m.aBatched ?? true);
  const bBatched = batch > 1 && (m.bBatched ?? true);
  const a = randomArray((aBatched ? batch : 1) * M * K, seed);
  const b = randomArray((bBatched ? batch : 1) * K * N, seed + 1);
  const aShape = transA ? [K, M] : [M, K];
  const bShape = transB ? [N, K] : [K, N];
  const ta = tensor(a, aBatched ? [batch, ...aShape] : aShape);
  const tb = tensor(b, bBatched ? [batch, ...bShape] : bShape);
  const c = matmul(ta, tb, { transA, transB });
  const ref = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    const az = aBatched ? a.subarray(z * M * K, (z + 1) * M * K) : a;
    const bz = bBatched ? b.subarray(z * K * N, (z + 1) * K * N) : b;
    const opA = transA ? transpose(az, K, M) : az; // [M, K]
    const opB = transB ? transpose(bz, N, K) : bz; // [K, N]
    ref.set(matmulRef(opA, opB, { M, N, K }), z * M * N);
  }
  assertClose(await c.toArray(), ref, { ...tol(K), label: `${id} ${JSON.stringify(m)}` });
  [ta, tb, c].forEach((t) => t.dispose());
}

/** conv2d forward and both gradients on random data of geometry `d` against float64. */
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

for (const [id, tiling] of CANDIDATES) {
  test({
    name: `gemm candidate ${id}: matmuls (odd sizes, transposes, batch, split-K) and conv passes vs float64`,
    dawn: "once",
    async fn() {
      const g = await setup();
      const misfit = tilingMisfit(tiling, g.report.limits);
      if (misfit) throw new Error(`${id} is a candidate but does not fit this device: ${misfit}`);
      if (!gpu().poison) throw new Error("outputs are not poisoned");
      setGemmTiling(tiling);
      try {
        // A split-K candidate (offered for long-K GEMMs with few output tiles) runs the matmuls it is a
        // candidate for, and one conv geometry: forced, it splits every GEMM of each pass, even a 27-long one
        // into 4 or 16 unrolled register chunks that take llvmpipe seconds each to compile.
        const offered = (m: MatmulCase) =>
          candidatesOf({ M: m.M, N: m.N, K: m.K, batch: m.batch ?? 1 }).some((t) => tilingId(t) === id);
        let seed = 1;
        for (const m of MATMULS) {
          if (!tiling.splitK || offered(m)) await checkMatmul(m, seed, id);
          seed += 2;
        }
        for (const d of tiling.splitK ? [CONVS[1]] : CONVS) {
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
  name: "gemm candidates: vec4 workgroup tiles past the loop budget (split by gemmMaxK) vs float64",
  dawn: "once",
  async fn() {
    await setup();
    const vec4 = CANDIDATES.filter(([, t]) => t.vec4);
    if (vec4.length < 3) throw new Error(`only ${vec4.length} vec4 candidates`);
    try {
      for (const [id, tiling] of vec4) {
        setGemmTiling(tiling);
        // K just past one dispatch's budget, odd: two chunks, the second mostly zero padding.
        await checkMatmul({ M: 3, N: 5, K: gemmMaxK(tiling) + 7 }, 500, id);
      }
    } finally {
      setGemmTiling(null);
    }
  },
});

test({
  name: "gemm candidates: split-K candidates for long-K GEMMs with few output tiles only",
  fn() {
    const ids = (s: GemmSizes) => candidatesOf(s).map((t) => tilingId(t));
    const long = ids({ M: 5, N: 7, K: 4100, batch: 1 });
    for (const S of [4, 16]) {
      if (!long.some((id) => id.endsWith(`splitK=${S}`))) throw new Error(`no splitK=${S} in ${long}`);
    }
    const wide = ids({ M: 512, N: 512, K: 4100, batch: 1 });
    if (wide.some((id) => id.includes("splitK"))) throw new Error(`split-K for a 512×512 output: ${wide}`);
    const short = ids({ M: 5, N: 7, K: 200, batch: 1 });
    if (short.some((id) => id.includes("splitK"))) throw new Error(`split-K for K = 200: ${short}`);
  },
});
