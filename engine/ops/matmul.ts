/**
 * Matrix products through the GEMM template of `shaders/gemm.ts`: `matmul` (2-D and batched 3-D,
 * optional transposes, a 2-D operand broadcast over the batch) and `linear` (x·wᵀ + b).
 *
 * Transposes are never materialised: they change only the addressing in the read hooks, so the
 * backward passes dA = dC·Bᵀ and dB = Aᵀ·dC are the same kernel with other flags.
 */
import { gpu } from "../gpu.ts";
import { empty, fmtShape, ShapeError, type Tensor } from "../tensor.ts";
import { gradTarget, record } from "../autograd.ts";
import {
  type GemmHooks,
  type GemmKernel,
  gemmKernel,
  type GemmTiling,
  REGISTER_TILING,
  SHARED_TILING,
  tilingMisfit,
} from "../../shaders/gemm.ts";

import { gemmLoopTrips } from "../../shaders/gemm.ts";
import { MAX_LOOP_TRIPS } from "../../shaders/common.ts";
import { dispatchSplitK } from "./gemm_split.ts";

export type { GemmHooks, GemmTiling } from "../../shaders/gemm.ts";

let tilingOverride: GemmTiling | null = null;

/**
 * Forces the tiling of every GEMM (matmul, linear, conv2d and their backward passes); `null` restores
 * the choice of the kernel strategy (`gpu().kernels`). Tests use it to exercise one tiling exactly.
 */
export function setGemmTiling(tiling: GemmTiling | null): void {
  tilingOverride = tiling;
}

/**
 * The tiling GEMMs use now: a `setGemmTiling` override, else the strategy's (`gpu().kernels`): register
 * blocking for "software", workgroup-memory tiles for "gpu" — unless the device's limits cannot hold
 * those tiles, when GEMMs fall back to register blocking (which needs 16 invocations and no workgroup
 * memory), as `gemmFallbackReason()` reports.
 */
export function gemmTiling(): GemmTiling {
  if (tilingOverride) return tilingOverride;
  const g = gpu();
  if (g.kernels === "software") return REGISTER_TILING;
  return tilingMisfit(SHARED_TILING, g.report.limits) === null ? SHARED_TILING : REGISTER_TILING;
}

/** Why the "gpu" strategy's GEMM tiles do not fit this device (so GEMMs use register blocking), or null. */
export function gemmFallbackReason(): string | null {
  const g = gpu();
  return g.kernels === "gpu" ? tilingMisfit(SHARED_TILING, g.report.limits) : null;
}

/**
 * Records one GEMM dispatch with the given hooks and storage bindings; `tiling` overrides the adapter's
 * tiling for a shape that a special block fits exactly. A contraction longer than `gemmMaxK(tiling)` is
 * recorded as a split-K GEMM and a fixed-order sum (two dispatches; `engine/ops/gemm_split.ts`).
 */
export function dispatchGemm(
  name: string,
  sizes: { M: number; N: number; K: number; batch: number },
  hooks: GemmHooks,
  bindings: (Tensor | GPUBuffer)[],
  tiling: GemmTiling = gemmTiling(),
): void {
  // A contraction too long for one invocation's loop budget is split over more invocations.
  if (gemmLoopTrips(sizes.K, tiling) > MAX_LOOP_TRIPS) {
    return dispatchSplitK(name, sizes, hooks, bindings, tiling, dispatchGemm);
  }
  // Generating a kernel costs far more host time than recording it (an unrolled one is ~100 KB of
  // WGSL): memoise by the inputs of `gemmKernel`, so a training step only concatenates hook strings.
  const key =
    `${sizes.M},${sizes.N},${sizes.K},${sizes.batch}|${tiling.tileM},${tiling.tileN},${tiling.tileK},` +
    `${tiling.threadM},${tiling.threadN},${tiling.useWorkgroupMemory}|${hooks.decls}\u0000${hooks.readA}\u0000` +
    `${hooks.readB}\u0000${hooks.writeC}\u0000${hooks.readA4 ?? "-"}\u0000${hooks.readB4 ?? "-"}\u0000` +
    `${hooks.writeC4 ?? "-"}\u0000${hooks.readBT4 ?? "-"}`;
  let kernel = kernelMemo.get(key);
  if (!kernel) {
    kernel = gemmKernel({ ...sizes, hooks, tiling });
    if (kernelMemo.size >= MAX_MEMO) kernelMemo.clear();
    kernelMemo.set(key, kernel);
  }
  const { code, workgroups } = kernel;
  gpu().dispatch({ name, code }, bindings.map((b) => b instanceof GPUBuffer ? b : b.range), workgroups);
}

const MAX_MEMO = 1024;
const kernelMemo = new Map<string, GemmKernel>();

/** Layout of one operand in storage: batch stride (0 = broadcast) and whether it is stored transposed. */
interface Operand {
  /** Elements between consecutive batch entries (0: the same matrix for every batch entry). */
  batchStride: number;
  trans: boolean;
}

/**
 * Hooks of C[b] = op(A)[b]·op(B)[b] for row-major storage. `A` is [M,K] ([K,M] when transposed), `B`
 * is [K,N] ([N,K] when transposed). With `reduceBatch` the batch index is folded into the contraction
 * (k = b·K + k'), which sums the products over the batch (the gradient of a broadcast operand).
 * `epilogue` is the body of writeC given `v` (defaults to `c[b*M*N + row*N + col] = v`).
 */
function matmulHooks(
  M: number,
  N: number,
  K: number,
  a: Operand,
  b: Operand,
  reduceBatch: number,
  extraDecls = "",
  writeC?: string,
): GemmHooks {
  // The default epilogue stores vec4 rows when N % 4 == 0 (then every row starts 16-byte aligned).
  const cVec = writeC === undefined && N % 4 === 0;
  const cIndex = `b * ${M * N}u + row * ${N}u + col`;
  writeC ??= `c[${cIndex}] = v;`;
  // Contraction index → (batch, k) when the batch is reduced.
  const split = (k: string) =>
    reduceBatch > 1 ? { bb: `(${k} / ${K}u)`, kk: `(${k} % ${K}u)` } : { bb: "b", kk: k };
  const aIndex = (row: string, k: string) => {
    const { bb, kk } = split(`(${k})`);
    row = `(${row})`;
    return `${bb} * ${a.batchStride}u + ${a.trans ? `${kk} * ${M}u + ${row}` : `${row} * ${K}u + ${kk}`}`;
  };
  const bIndex = (k: string, col: string) => {
    const { bb, kk } = split(`(${k})`);
    col = `(${col})`;
    return `${bb} * ${b.batchStride}u + ${b.trans ? `${col} * ${K}u + ${kk}` : `${kk} * ${N}u + ${col}`}`;
  };
  // vec4 bindings where 4 consecutive hook elements are contiguous and aligned in storage.
  const aVec = !a.trans && K % 4 === 0 && a.batchStride % 4 === 0;
  const bVec = !b.trans && N % 4 === 0 && b.batchStride % 4 === 0;
  const bT4 = b.trans && aVec && K % 4 === 0 && b.batchStride % 4 === 0 && reduceBatch <= 1;
  const decls = `@group(0) @binding(0) var<storage, read> A: array<${aVec ? "vec4<f32>" : "f32"}>;
@group(0) @binding(1) var<storage, read> B: array<${bVec || bT4 ? "vec4<f32>" : "f32"}>;
@group(0) @binding(2) var<storage, read_write> c: array<${cVec ? "vec4<f32>" : "f32"}>;
${extraDecls}`;
  const hooks: GemmHooks = {
    decls,
    readA: aVec
      ? `let i = ${aIndex("row", "k")}; return A[i / 4u][i % 4u];`
      : `return A[${aIndex("row", "k")}];`,
    readB: bVec || bT4
      ? `let i = ${bIndex("k", "col")}; return B[i / 4u][i % 4u];`
      : `return B[${bIndex("k", "col")}];`,
    writeC: cVec ? `let i = ${cIndex}; c[i / 4u][i % 4u] = v;` : writeC,
  };
  if (cVec) hooks.writeC4 = `c[(${cIndex}) / 4u] = v;`;
  if (aVec) hooks.readA4 = `return A[(${aIndex("row", "k")}) / 4u];`;
  if (bVec) hooks.readB4 = `return B[(${bIndex("k", "col")}) / 4u];`;
  else if (bT4) {
    // Both operands contraction-major (A·Bᵀ, e.g. a Gram matrix z·zᵀ): dot-product kernel, vec4 loads.
    hooks.readBT4 = `return B[(${bIndex("k", "col")}) / 4u];`;
  } else if (b.trans) {
    hooks.readB4 = `return vec4<f32>(${
      [0, 1, 2, 3].map((j) => `B[${bIndex("k", `col + ${j}u`)}]`).join(", ")
    });`;
  }
  return hooks;
}

/** Options of `matmul`. */
export interface MatmulOptions {
  /** Use Aᵀ: `a` is stored [K, M] (or [B, K, M]). */
  transA?: boolean;
  /** Use Bᵀ: `b` is stored [N, K] (or [B, N, K]). */
  transB?: boolean;
}

interface MatmulPlan {
  batch: number;
  M: number;
  N: number;
  K: number;
  out: number[];
}

function plan(a: Tensor, b: Tensor, transA: boolean, transB: boolean): MatmulPlan {
  const op = "matmul";
  const shapes = `${fmtShape(a.shape)}${transA ? "ᵀ" : ""} × ${fmtShape(b.shape)}${transB ? "ᵀ" : ""}`;
  if (a.dtype !== "f32" || b.dtype !== "f32") {
    throw new ShapeError(op, `needs f32 tensors, got ${a.dtype} and ${b.dtype}`);
  }
  if (a.rank < 2 || a.rank > 3 || b.rank < 2 || b.rank > 3) {
    throw new ShapeError(op, `expects 2-D or 3-D operands, got ${shapes}`);
  }
  const batchA = a.rank === 3 ? a.shape[0] : 0;
  const batchB = b.rank === 3 ? b.shape[0] : 0;
  if (batchA && batchB && batchA !== batchB) throw new ShapeError(op, `batch sizes differ: ${shapes}`);
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [M, K] = transA ? [ac, ar] : [ar, ac];
  const [K2, N] = transB ? [bc, br] : [br, bc];
  if (K !== K2) throw new ShapeError(op, `inner dimensions differ (${K} vs ${K2}): ${shapes}`);
  const batch = Math.max(batchA, batchB);
  if (batch > 65535) throw new ShapeError(op, `batch ${batch} exceeds 65535: ${shapes}`);
  return { batch: Math.max(1, batch), M, N, K, out: batch ? [batch, M, N] : [M, N] };
}

/** Records C = op(A)·op(B) into `out` (raw kernel call, no autograd). */
function matmulInto(
  out: Tensor,
  a: Tensor,
  b: Tensor,
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  batch: number,
  reduceBatch = 1,
): void {
  const opA = { batchStride: a.rank === 3 ? M * K : 0, trans: transA };
  const opB = { batchStride: b.rank === 3 ? K * N : 0, trans: transB };
  const hooks = matmulHooks(M, N, K, opA, opB, reduceBatch);
  const sizes = reduceBatch > 1 ? { M, N, K: K * reduceBatch, batch: 1 } : { M, N, K, batch };
  dispatchGemm(`matmul${transA ? "T" : "N"}${transB ? "T" : "N"}`, sizes, hooks, [a, b, out]);
}

/**
 * Matrix product `op(a)·op(b)` with op = identity or transpose (`transA`, `transB`, never
 * materialised): [M,K]·[K,N] → [M,N], or batched [B,M,K]·[B,K,N] → [B,M,N]; a 2-D operand is
 * broadcast over the batch of a 3-D one. Differentiable in both operands.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const { batch, M, N, K, out: outShape } = plan(a, b, transA, transB);
  const out = empty(outShape);
  if (out.size === 0) return out;
  matmulInto(out, a, b, transA, transB, M, N, K, batch);
  return record("matmul", [a, b], out, (g) => {
    // dA = dC·op(B)ᵀ (stored transposed when transA), dB = op(A)ᵀ·dC (likewise).
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    if (a.requiresGrad) {
      ga = empty(a.shape);
      const reduce = a.rank === 2 && batch > 1 && b.rank === 3 ? batch : 1;
      if (!transA) {
        // dA[M,K] = dC[M,N] · op(B)ᵀ[N,K]
        matmulGrad(ga, g, b, false, !transB, M, K, N, batch, reduce, g.rank === 3, b.rank === 3);
      } else {
        // a is stored [K,M]: dA_stored[K,M] = op(B)[K,N] · dCᵀ[N,M]
        matmulGrad(ga, b, g, transB, true, K, M, N, batch, reduce, b.rank === 3, g.rank === 3);
      }
    }
    if (b.requiresGrad) {
      gb = empty(b.shape);
      const reduce = b.rank === 2 && batch > 1 && a.rank === 3 ? batch : 1;
      if (!transB) {
        // dB[K,N] = op(A)ᵀ[K,M] · dC[M,N]
        matmulGrad(gb, a, g, !transA, false, K, N, M, batch, reduce, a.rank === 3, g.rank === 3);
      } else {
        // b is [N,K]: dB_stored[N,K] = dCᵀ[N,M] · op(A)[M,K]
        matmulGrad(gb, g, a, true, transA, N, K, M, batch, reduce, g.rank === 3, a.rank === 3);
      }
    }
    return [ga, gb];
  });
}

/** One gradient product; `batchedX` says whether operand X has a batch dimension in storage. */
function matmulGrad(
  out: Tensor,
  x: Tensor,
  y: Tensor,
  transX: boolean,
  transY: boolean,
  M: number,
  N: number,
  K: number,
  batch: number,
  reduceBatch: number,
  batchedX: boolean,
  batchedY: boolean,
): void {
  const opX = { batchStride: batchedX ? M * K : 0, trans: transX };
  const opY = { batchStride: batchedY ? K * N : 0, trans: transY };
  const hooks = matmulHooks(M, N, K, opX, opY, reduceBatch);
  const sizes = reduceBatch > 1
    ? { M, N, K: K * reduceBatch, batch: 1 }
    : { M, N, K, batch: out.rank === 3 ? batch : 1 };
  dispatchGemm(`matmul.grad${transX ? "T" : "N"}${transY ? "T" : "N"}`, sizes, hooks, [x, y, out]);
}

/**
 * Fully connected layer `x·wᵀ + bias` with PyTorch's layout: x [N, in], w [out, in], bias [out]
 * (optional) → [N, out]. Differentiable in all three; the bias gradient (column sums of the output
 * gradient) is fused into the weight-gradient GEMM as an extra column of ones.
 */
export function linear(x: Tensor, w: Tensor, bias?: Tensor): Tensor {
  const op = "linear";
  const shapes = `x ${fmtShape(x.shape)}, w ${fmtShape(w.shape)}${
    bias ? `, bias ${fmtShape(bias.shape)}` : ""
  }`;
  if (x.rank !== 2 || w.rank !== 2) throw new ShapeError(op, `expects 2-D x and w, got ${shapes}`);
  if (x.shape[1] !== w.shape[1]) throw new ShapeError(op, `in-features differ: ${shapes}`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== w.shape[0])) {
    throw new ShapeError(op, `bias must be [${w.shape[0]}]: ${shapes}`);
  }
  if ([x, w, bias].some((t) => t && t.dtype !== "f32")) {
    throw new ShapeError(op, `needs f32 tensors: ${shapes}`);
  }
  const [N, IN] = x.shape;
  const OUT = w.shape[0];
  const out = empty([N, OUT]);
  if (out.size === 0) return out;
  const opX = { batchStride: 0, trans: false };
  const opW = { batchStride: 0, trans: true };
  if (bias) {
    const hooks = matmulHooks(
      N,
      OUT,
      IN,
      opX,
      opW,
      1,
      "@group(0) @binding(3) var<storage, read> bias: array<f32>;",
      `c[row * ${OUT}u + col] = v + bias[col];`,
    );
    dispatchGemm("linear", { M: N, N: OUT, K: IN, batch: 1 }, hooks, [x, w, out, bias]);
  } else {
    dispatchGemm("linear", { M: N, N: OUT, K: IN, batch: 1 }, matmulHooks(N, OUT, IN, opX, opW, 1), [
      x,
      w,
      out,
    ]);
  }
  const inputs = bias ? [x, w, bias] : [x, w];
  return record(op, inputs, out, (g) => {
    let gx: Tensor | null = null;
    let gw: Tensor | null = null;
    let gb: Tensor | null = null;
    if (x.requiresGrad) {
      // dx[N,in] = dy[N,out] · w[out,in]
      gx = empty(x.shape);
      matmulInto(gx, g, w, false, false, N, IN, OUT, 1);
    }
    const wantW = w.requiresGrad;
    const wantB = bias !== undefined && bias.requiresGrad;
    if (wantW || wantB) {
      // [dw | db][out, in+1] = dyᵀ[out,N] · [x | 1][N, in+1]; only the wanted columns are computed.
      gw = wantW ? gradTarget(w) : null;
      gb = wantB ? gradTarget(bias!) : null;
      const cols = wantW ? IN + (wantB ? 1 : 0) : 1;
      const first = wantW ? 0 : IN; // first logical column of [x | 1]
      const decls = [
        "@group(0) @binding(0) var<storage, read> dy: array<f32>;",
        "@group(0) @binding(1) var<storage, read> x: array<f32>;",
        wantW ? "@group(0) @binding(2) var<storage, read_write> dw: array<f32>;" : "",
        wantB ? `@group(0) @binding(${wantW ? 3 : 2}) var<storage, read_write> db: array<f32>;` : "",
      ].join("\n");
      const writeW = `dw[row * ${IN}u + col] = v;`;
      const writeB = `db[row] = v;`;
      const hooks: GemmHooks = {
        decls,
        readA: `return dy[k * ${OUT}u + row];`,
        readA4:
          `return vec4<f32>(dy[k * ${OUT}u + row], dy[(k + 1u) * ${OUT}u + row], dy[(k + 2u) * ${OUT}u + row], ` +
          `dy[(k + 3u) * ${OUT}u + row]);`,
        readB: wantB
          ? `let cc = col + ${first}u; if (cc >= ${IN}u) { return 1.0; } return x[k * ${IN}u + cc];`
          : `return x[k * ${IN}u + col];`,
        writeC: wantW && wantB
          ? `if (col < ${IN}u) { ${writeW} } else { ${writeB} }`
          : wantW
          ? writeW
          : writeB,
      };
      const bindings: Tensor[] = [g, x];
      if (gw) bindings.push(gw);
      if (gb) bindings.push(gb);
      dispatchGemm("linear.gradWeight", { M: OUT, N: cols, K: N, batch: 1 }, hooks, bindings);
    }
    return bias ? [gx, gw, gb] : [gx, gw];
  });
}
