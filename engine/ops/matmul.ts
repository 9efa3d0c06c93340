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
import { type KernelBinding, read, runGenerated, write } from "../program.ts";
import {
  type GemmHooks,
  gemmKernel,
  type GemmTiling,
  REGISTER_TILING,
  SHARED_TILING,
  tilingMisfit,
} from "../../shaders/gemm.ts";

import { gemmLoopTrips } from "../../shaders/gemm.ts";
import { MAX_LOOP_TRIPS } from "../../shaders/common.ts";
import { dispatchSplitK } from "./gemm_split.ts";
import { tunedGemmTiling } from "../tune/gemm_site.ts";
import { tilingId } from "../tune/gemm_candidates.ts";

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

/** A GEMM's hooks and the bindings they use (declared by `engine/program.ts`, in this order). */
export interface GemmProgram {
  /** The hooks; `decls` holds only what is not a binding (constants, helpers). */
  hooks: GemmHooks;
  /** What the hooks read and write. */
  bindings: KernelBinding[];
}

/**
 * Records one GEMM dispatch of `gemm`; `tiling` overrides the adapter's tiling for a shape that a special
 * block fits exactly. Unless a tiling is forced with `setGemmTiling`, the autotuner (`engine/tune/`) may
 * replace the heuristic's tiling with one measured faster for this GEMM on this adapter.
 */
export function dispatchGemm(
  name: string,
  sizes: { M: number; N: number; K: number; batch: number },
  gemm: GemmProgram,
  tiling: GemmTiling = gemmTiling(),
): void {
  const chosen = tilingOverride ? tiling : tunedGemmTiling(name, sizes, gemm, tiling, dispatchTiledGemm);
  dispatchTiledGemm(name, sizes, gemm, chosen);
}

/**
 * Records one GEMM dispatch of `gemm` on `tiling` as given. A contraction longer than `gemmMaxK(tiling)` is
 * recorded as a split-K GEMM and a fixed-order sum (two dispatches; `engine/ops/gemm_split.ts`).
 */
function dispatchTiledGemm(
  name: string,
  sizes: { M: number; N: number; K: number; batch: number },
  gemm: GemmProgram,
  tiling: GemmTiling,
): void {
  // A contraction too long for one invocation's loop budget is split over more invocations; a tiling's
  // `splitK` asks for a split anyway (long K, few output tiles).
  if ((tiling.splitK ?? 1) > 1 || gemmLoopTrips(sizes.K, tiling) > MAX_LOOP_TRIPS) {
    return dispatchSplitK(name, sizes, gemm, tiling, dispatchTiledGemm);
  }
  // Generating a kernel costs far more host time than recording it (an unrolled one is ~100 KB of
  // WGSL): the source is memoised by the inputs of `gemmKernel`, so a training step only concatenates
  // hook strings.
  const { hooks } = gemm;
  const key =
    `${sizes.M},${sizes.N},${sizes.K},${sizes.batch}|${
      tilingId(tiling)
    }|${hooks.decls}\u0000${hooks.readA}\u0000` +
    `${hooks.readB}\u0000${hooks.writeC}\u0000${hooks.readA4 ?? "-"}\u0000${hooks.readB4 ?? "-"}\u0000` +
    `${hooks.writeC4 ?? "-"}\u0000${hooks.readBT4 ?? "-"}`;
  runGenerated({
    name,
    bindings: gemm.bindings,
    key,
    build: () => {
      const { code, workgroups } = gemmKernel({ ...sizes, hooks, tiling });
      return { body: code, workgroups };
    },
  });
}

/** One operand of a product: its tensor, whether it has a batch dimension in storage, and transposed or not. */
interface Operand {
  tensor: Tensor;
  /** Stored with a batch dimension (else the same matrix for every batch entry). */
  batched: boolean;
  /** Stored transposed. */
  trans: boolean;
}

/**
 * One product C[b] = op(A)[b]·op(B)[b] of row-major storage into `out`. `A` is [M,K] ([K,M] when
 * transposed), `B` is [K,N] ([N,K] when transposed). With `reduceBatch` > 1 the batch index is folded
 * into the contraction (k = b·K + k'), which sums the products over the batch (the gradient of a
 * broadcast operand). `writeC` is the body of writeC given `v` (default `c[b*M*N + row*N + col] = v`),
 * which may use the `extra` bindings.
 */
interface Product {
  out: Tensor;
  a: Operand;
  b: Operand;
  M: number;
  N: number;
  K: number;
  /** Batch entries (default 1). */
  batch?: number;
  /** Batch entries summed into one output (default 1). */
  reduceBatch?: number;
  /** Bindings after A, B and c, used by `writeC`. */
  extra?: KernelBinding[];
  /** Custom epilogue. */
  writeC?: string;
}

/** The hooks and bindings of `p` (see `Product`). */
function matmulHooks(p: Product): GemmProgram {
  const { M, N, K, a, b } = p;
  const reduceBatch = p.reduceBatch ?? 1;
  const aStride = a.batched ? M * K : 0;
  const bStride = b.batched ? K * N : 0;
  // The default epilogue stores vec4 rows when N % 4 == 0 (then every row starts 16-byte aligned).
  const cVec = p.writeC === undefined && N % 4 === 0;
  const cIndex = `b * ${M * N}u + row * ${N}u + col`;
  const writeC = p.writeC ?? `c[${cIndex}] = v;`;
  // Contraction index → (batch, k) when the batch is reduced.
  const split = (k: string) =>
    reduceBatch > 1 ? { bb: `(${k} / ${K}u)`, kk: `(${k} % ${K}u)` } : { bb: "b", kk: k };
  const aIndex = (row: string, k: string) => {
    const { bb, kk } = split(`(${k})`);
    row = `(${row})`;
    return `${bb} * ${aStride}u + ${a.trans ? `${kk} * ${M}u + ${row}` : `${row} * ${K}u + ${kk}`}`;
  };
  const bIndex = (k: string, col: string) => {
    const { bb, kk } = split(`(${k})`);
    col = `(${col})`;
    return `${bb} * ${bStride}u + ${b.trans ? `${col} * ${K}u + ${kk}` : `${kk} * ${N}u + ${col}`}`;
  };
  // vec4 bindings where 4 consecutive hook elements are contiguous and aligned in storage.
  const aVec = !a.trans && K % 4 === 0 && aStride % 4 === 0;
  const bVec = !b.trans && N % 4 === 0 && bStride % 4 === 0;
  const bT4 = b.trans && aVec && K % 4 === 0 && bStride % 4 === 0 && reduceBatch <= 1;
  const vec = (v: boolean) => v ? "array<vec4<f32>>" : "array<f32>";
  const bindings = [
    read("A", a.tensor, vec(aVec)),
    read("B", b.tensor, vec(bVec || bT4)),
    write("c", p.out, vec(cVec)),
    ...p.extra ?? [],
  ];
  const hooks: GemmHooks = {
    decls: "",
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
  return { hooks, bindings };
}

/** Records the product `p` (raw kernel call, no autograd) as `${op}` plus N/T for each operand. */
function matmulInto(op: string, p: Product): void {
  const reduceBatch = p.reduceBatch ?? 1;
  const { M, N, K } = p;
  const sizes = reduceBatch > 1
    ? { M, N, K: K * reduceBatch, batch: 1 }
    : { M, N, K, batch: p.out.rank === 3 ? p.batch ?? 1 : 1 };
  dispatchGemm(`${op}${p.a.trans ? "T" : "N"}${p.b.trans ? "T" : "N"}`, sizes, matmulHooks(p));
}

/** One gradient product (see `Product`). */
function matmulGrad(p: Product): void {
  matmulInto("matmul.grad", p);
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
  const opA = { tensor: a, batched: a.rank === 3, trans: transA };
  const opB = { tensor: b, batched: b.rank === 3, trans: transB };
  matmulInto("matmul", { out, a: opA, b: opB, M, N, K, batch });
  return record("matmul", [a, b], out, (g) => {
    // dA = dC·op(B)ᵀ (stored transposed when transA), dB = op(A)ᵀ·dC (likewise).
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    if (a.requiresGrad) {
      ga = empty(a.shape);
      const reduce = a.rank === 2 && batch > 1 && b.rank === 3 ? batch : 1;
      if (!transA) {
        // dA[M,K] = dC[M,N] · op(B)ᵀ[N,K]
        const x = { tensor: g, batched: g.rank === 3, trans: false };
        const y = { ...opB, trans: !transB };
        matmulGrad({ out: ga, a: x, b: y, M, N: K, K: N, batch, reduceBatch: reduce });
      } else {
        // a is stored [K,M]: dA_stored[K,M] = op(B)[K,N] · dCᵀ[N,M]
        const y = { tensor: g, batched: g.rank === 3, trans: true };
        matmulGrad({ out: ga, a: opB, b: y, M: K, N: M, K: N, batch, reduceBatch: reduce });
      }
    }
    if (b.requiresGrad) {
      gb = empty(b.shape);
      const reduce = b.rank === 2 && batch > 1 && a.rank === 3 ? batch : 1;
      if (!transB) {
        // dB[K,N] = op(A)ᵀ[K,M] · dC[M,N]
        const y = { tensor: g, batched: g.rank === 3, trans: false };
        matmulGrad({
          out: gb,
          a: { ...opA, trans: !transA },
          b: y,
          M: K,
          N,
          K: M,
          batch,
          reduceBatch: reduce,
        });
      } else {
        // b is [N,K]: dB_stored[N,K] = dCᵀ[N,M] · op(A)[M,K]
        const x = { tensor: g, batched: g.rank === 3, trans: true };
        matmulGrad({ out: gb, a: x, b: opA, M: N, N: K, K: M, batch, reduceBatch: reduce });
      }
    }
    return [ga, gb];
  });
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
  const product: Product = {
    out,
    a: { tensor: x, batched: false, trans: false },
    b: { tensor: w, batched: false, trans: true },
    M: N,
    N: OUT,
    K: IN,
  };
  if (bias) {
    product.extra = [read("bias", bias)];
    product.writeC = `c[row * ${OUT}u + col] = v + bias[col];`;
  }
  dispatchGemm("linear", { M: N, N: OUT, K: IN, batch: 1 }, matmulHooks(product));
  const inputs = bias ? [x, w, bias] : [x, w];
  return record(op, inputs, out, (g) => {
    let gx: Tensor | null = null;
    let gw: Tensor | null = null;
    let gb: Tensor | null = null;
    if (x.requiresGrad) {
      // dx[N,in] = dy[N,out] · w[out,in]
      gx = empty(x.shape);
      const a = { tensor: g, batched: false, trans: false };
      matmulInto("matmul", {
        out: gx,
        a,
        b: { tensor: w, batched: false, trans: false },
        M: N,
        N: IN,
        K: OUT,
      });
    }
    const wantW = w.requiresGrad;
    const wantB = bias !== undefined && bias.requiresGrad;
    if (wantW || wantB) {
      // [dw | db][out, in+1] = dyᵀ[out,N] · [x | 1][N, in+1]; only the wanted columns are computed.
      gw = wantW ? gradTarget(w) : null;
      gb = wantB ? gradTarget(bias!) : null;
      const cols = wantW ? IN + (wantB ? 1 : 0) : 1;
      const first = wantW ? 0 : IN; // first logical column of [x | 1]
      const bindings = [read("dy", g), read("x", x)];
      if (gw) bindings.push(write("dw", gw));
      if (gb) bindings.push(write("db", gb));
      const writeW = `dw[row * ${IN}u + col] = v;`;
      const writeB = `db[row] = v;`;
      const hooks: GemmHooks = {
        decls: "",
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
      dispatchGemm("linear.gradWeight", { M: OUT, N: cols, K: N, batch: 1 }, { hooks, bindings });
    }
    return bias ? [gx, gw, gb] : [gx, gw];
  });
}
