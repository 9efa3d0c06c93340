/**
 * matmul and linear against float64 references, on both GEMM tilings (register blocking and
 * workgroup memory), with shapes that are not multiples of any tile; gradients against the analytic
 * float64 reference (itself checked by finite differences on a small case).
 */
import { throws } from "node:assert/strict";
import { assertClose, dot, numericGrad, randomArray, setup } from "./util.ts";
import { test } from "./harness.ts";
import { ShapeError, tensor } from "../engine/tensor.ts";
import { linear, matmul, setGemmTiling } from "../engine/ops/matmul.ts";
import { fitTiling, type GemmTiling, REGISTER_TILING, SHARED_TILING, UNROLL_K } from "../shaders/gemm.ts";
import { linearRef, matmulRef } from "./reference/matmul_ref.ts";

const TILINGS: [string, GemmTiling][] = [["register", REGISTER_TILING], ["shared", SHARED_TILING]];

/** Tolerance of an f32 dot product of length K with |terms| ≤ 1. */
const tol = (K: number) => ({ rtol: 1e-4, atol: 1e-4 * Math.sqrt(Math.max(1, K)) });

/** Transposes a row-major [r, c] float64 matrix. */
function transpose(a: ArrayLike<number>, r: number, c: number): Float64Array {
  const out = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = a[i * c + j];
  return out;
}

for (const [label, tiling] of TILINGS) {
  test({
    name: `matmul: four transpose combinations, odd shapes, vs float64 (${label} tiling)`,
    async fn() {
      await setup();
      setGemmTiling(tiling);
      try {
        let seed = 10;
        // K % 4 == 0 with transB alone takes the dot-product kernel (both operands contraction-major).
        for (
          const [M, N, K] of [[1, 1, 1], [37, 53, 29], [130, 67, 70], [8, 12, 16], [35, 141, 44], [
            19,
            45,
            32,
          ]]
        ) {
          for (const transA of [false, true]) {
            for (const transB of [false, true]) {
              const a = randomArray(M * K, seed++);
              const b = randomArray(K * N, seed++);
              const ta = tensor(a, transA ? [K, M] : [M, K]);
              const tb = tensor(b, transB ? [N, K] : [K, N]);
              const c = matmul(ta, tb, { transA, transB });
              assertClose(await c.toArray(), matmulRef(a, b, { M, N, K, transA, transB }), {
                ...tol(K),
                label: `${M}×${N}×${K} transA=${transA} transB=${transB}`,
              });
              [ta, tb, c].forEach((t) => t.dispose());
            }
          }
        }
      } finally {
        setGemmTiling(null);
      }
    },
  });

  test({
    name: `matmul: batched 3-D and broadcast 2-D operands, forward and backward (${label} tiling)`,
    async fn() {
      await setup();
      setGemmTiling(tiling);
      try {
        const [B, M, N, K] = [3, 9, 13, 20];
        let seed = 100;
        for (const [aBatched, bBatched] of [[true, true], [true, false], [false, true]]) {
          for (const [transA, transB] of [[false, false], [true, true], [false, true]]) {
            {
              const a = randomArray((aBatched ? B : 1) * M * K, seed++);
              const b = randomArray((bBatched ? B : 1) * K * N, seed++);
              const r = randomArray(B * M * N, seed++);
              const aShape = transA ? [K, M] : [M, K];
              const bShape = transB ? [N, K] : [K, N];
              const ta = tensor(a, aBatched ? [B, ...aShape] : aShape, { requiresGrad: true });
              const tb = tensor(b, bBatched ? [B, ...bShape] : bShape, { requiresGrad: true });
              const c = matmul(ta, tb, { transA, transB });
              const dims = { M, N, K, batch: B, transA, transB };
              const name = `aBatched=${aBatched} bBatched=${bBatched} transA=${transA} transB=${transB}`;
              assertClose(await c.toArray(), matmulRef(a, b, dims, aBatched, bBatched), {
                ...tol(K),
                label: `forward ${name}`,
              });
              c.backward(tensor(r, c.shape));
              // Analytic reference: dL/da = Σ r·∂c/∂a, via finite differences of the float64 reference
              // (exact for a bilinear function up to rounding).
              const loss = (av: Float64Array, bv: Float64Array) =>
                dot(matmulRef(av, bv, dims, aBatched, bBatched), r);
              const ga = numericGrad((av) => loss(av, b), a, 1e-3);
              const gb = numericGrad((bv) => loss(a, bv), b, 1e-3);
              assertClose(await ta.grad!.toArray(), ga, {
                rtol: 1e-4,
                atol: 1e-4 * Math.sqrt(B * N),
                label: `dA ${name}`,
              });
              assertClose(await tb.grad!.toArray(), gb, {
                rtol: 1e-4,
                atol: 1e-4 * Math.sqrt(B * M),
                label: `dB ${name}`,
              });
              [ta, tb, c].forEach((t) => t.dispose());
            }
          }
        }
      } finally {
        setGemmTiling(null);
      }
    },
  });

  test({
    name: `matmul: backward of odd 2-D shapes vs analytic float64 reference (${label} tiling)`,
    async fn() {
      await setup();
      setGemmTiling(tiling);
      try {
        const [M, N, K] = [37, 53, 29];
        let seed = 200;
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            const a = randomArray(M * K, seed++);
            const b = randomArray(K * N, seed++);
            const r = randomArray(M * N, seed++);
            const ta = tensor(a, transA ? [K, M] : [M, K], { requiresGrad: true });
            const tb = tensor(b, transB ? [N, K] : [K, N], { requiresGrad: true });
            const c = matmul(ta, tb, { transA, transB });
            c.backward(tensor(r, [M, N]));
            // dA = r·op(B)ᵀ [M,K], dB = op(A)ᵀ·r [K,N]; stored transposed when the operand was.
            const opB = transB ? transpose(b, N, K) : Float64Array.from(b); // [K,N]
            const opA = transA ? transpose(a, K, M) : Float64Array.from(a); // [M,K]
            const dA = matmulRef(r, opB, { M, N: K, K: N, transB: true });
            const dB = matmulRef(opA, r, { M: K, N, K: M, transA: true });
            const name = `transA=${transA} transB=${transB}`;
            assertClose(await ta.grad!.toArray(), transA ? transpose(dA, M, K) : dA, {
              ...tol(N),
              label: `dA ${name}`,
            });
            assertClose(await tb.grad!.toArray(), transB ? transpose(dB, K, N) : dB, {
              ...tol(M),
              label: `dB ${name}`,
            });
            [ta, tb, c].forEach((t) => t.dispose());
          }
        }
      } finally {
        setGemmTiling(null);
      }
    },
  });

  test({
    name: `linear: forward and gradients of x, w and bias (${label} tiling)`,
    async fn() {
      await setup();
      setGemmTiling(tiling);
      try {
        let seed = 300;
        for (const [N, IN, OUT] of [[1, 1, 1], [17, 33, 10], [64, 40, 12]]) {
          for (const withBias of [true, false]) {
            const x = randomArray(N * IN, seed++);
            const w = randomArray(OUT * IN, seed++);
            const bias = withBias ? randomArray(OUT, seed++) : undefined;
            const r = randomArray(N * OUT, seed++);
            const tx = tensor(x, [N, IN], { requiresGrad: true });
            const tw = tensor(w, [OUT, IN], { requiresGrad: true });
            const tb = bias ? tensor(bias, [OUT], { requiresGrad: true }) : undefined;
            const y = linear(tx, tw, tb);
            const name = `${N}×${IN}→${OUT} bias=${withBias}`;
            assertClose(await y.toArray(), linearRef(x, w, bias, N, IN, OUT), {
              ...tol(IN),
              label: `forward ${name}`,
            });
            y.backward(tensor(r, [N, OUT]));
            // dx = r·w, dw = rᵀ·x, db = column sums of r.
            assertClose(await tx.grad!.toArray(), matmulRef(r, w, { M: N, N: IN, K: OUT }), {
              ...tol(OUT),
              label: `dx ${name}`,
            });
            assertClose(await tw.grad!.toArray(), matmulRef(r, x, { M: OUT, N: IN, K: N, transA: true }), {
              ...tol(N),
              label: `dw ${name}`,
            });
            if (tb) {
              const db = new Float64Array(OUT);
              for (let n = 0; n < N; n++) for (let o = 0; o < OUT; o++) db[o] += r[n * OUT + o];
              assertClose(await tb.grad!.toArray(), db, { ...tol(N), label: `db ${name}` });
            }
            [tx, tw, tb, y].forEach((t) => t?.dispose());
          }
        }
        // Only the bias needs a gradient: the fused GEMM computes just the ones column.
        const x = randomArray(10 * 6, 1);
        const tx = tensor(x, [10, 6]);
        const tw = tensor(randomArray(5 * 6, 2), [5, 6]);
        const tb = tensor(randomArray(5, 3), [5], { requiresGrad: true });
        const r = randomArray(50, 4);
        linear(tx, tw, tb).backward(tensor(r, [10, 5]));
        const db = new Float64Array(5);
        for (let n = 0; n < 10; n++) for (let o = 0; o < 5; o++) db[o] += r[n * 5 + o];
        assertClose(await tb.grad!.toArray(), db, { ...tol(10), label: "db only" });
      } finally {
        setGemmTiling(null);
      }
    },
  });
}

test({
  name: "matmul: the analytic backward formulas agree with float64 finite differences",
  fn() {
    const [M, N, K] = [3, 4, 5];
    const a = randomArray(M * K, 1);
    const b = randomArray(K * N, 2);
    const r = randomArray(M * N, 3);
    const ga = numericGrad((av) => dot(matmulRef(av, b, { M, N, K }), r), a);
    const gb = numericGrad((bv) => dot(matmulRef(a, bv, { M, N, K }), r), b);
    assertClose(matmulRef(r, b, { M, N: K, K: N, transB: true }), ga, {
      rtol: 1e-6,
      atol: 1e-8,
      label: "dA",
    });
    assertClose(matmulRef(a, r, { M: K, N, K: M, transA: true }), gb, {
      rtol: 1e-6,
      atol: 1e-8,
      label: "dB",
    });
  },
});

test({
  name: "matmul/linear: shape errors name the op and both shapes",
  async fn() {
    await setup();
    const a = tensor(new Float32Array(6), [2, 3]);
    const b = tensor(new Float32Array(8), [4, 2]);
    throws(
      () => matmul(a, b),
      (e: Error) => e instanceof ShapeError && /matmul.*\[2, 3\].*\[4, 2\]/.test(e.message),
    );
    throws(
      () => matmul(tensor(new Float32Array(12), [2, 2, 3]), tensor(new Float32Array(27), [3, 3, 3])),
      (e: Error) => e instanceof ShapeError && /matmul.*batch.*\[2, 2, 3\].*\[3, 3, 3\]/.test(e.message),
    );
    throws(
      () => matmul(tensor([1, 2, 3]), b),
      (e: Error) => e instanceof ShapeError && /matmul/.test(e.message),
    );
    throws(
      () => linear(a, tensor(new Float32Array(8), [2, 4])),
      (e: Error) => e instanceof ShapeError && /linear.*\[2, 3\].*\[2, 4\]/.test(e.message),
    );
    throws(
      () => linear(a, tensor(new Float32Array(6), [2, 3]), tensor([1, 2, 3])),
      (e: Error) => e instanceof ShapeError && /linear.*bias/.test(e.message),
    );
  },
});

test({
  name: "gemm: fitTiling shrinks register blocks for small problems and keeps shared tilings",
  fn() {
    const small = fitTiling(REGISTER_TILING, 1000, 20);
    if (small.tileN < 20 || small.tileN >= 40 * 2 || small.threadN !== 4) {
      throw new Error(`unexpected ${JSON.stringify(small)}`);
    }
    const big = fitTiling(REGISTER_TILING, 1000, 1000);
    if (JSON.stringify(big) !== JSON.stringify(REGISTER_TILING)) {
      throw new Error(`changed ${JSON.stringify(big)}`);
    }
    if (fitTiling(SHARED_TILING, 1, 1) !== SHARED_TILING) throw new Error("shared tiling changed");
  },
});

test({
  name: "matmul: contractions around the register kernel's full-unroll limit (K ≤ UNROLL_K)",
  async fn() {
    await setup();
    setGemmTiling(REGISTER_TILING);
    try {
      let seed = 900;
      for (const [M, N, K] of [[5, 9, 3], [19, 45, UNROLL_K], [6, 13, UNROLL_K + 1]]) {
        const a = randomArray(M * K, seed++);
        const b = randomArray(K * N, seed++);
        const ta = tensor(a, [M, K]);
        const tb = tensor(b, [K, N]);
        const c = matmul(ta, tb);
        assertClose(await c.toArray(), matmulRef(a, b, { M, N, K, transA: false, transB: false }), {
          ...tol(K),
          label: `${M}×${N}×${K}`,
        });
        [ta, tb, c].forEach((t) => t.dispose());
      }
    } finally {
      setGemmTiling(null);
    }
  },
});
