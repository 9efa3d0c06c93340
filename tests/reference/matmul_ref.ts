/**
 * Float64 CPU references of the matrix products: naive triple loops over row-major arrays.
 */

/**
 * op(A)·op(B) for row-major storage: A is [M,K] ([K,M] when `transA`), B is [K,N] ([N,K] when
 * `transB`); `batch` matrices laid out one after another, with batch stride 0 for a broadcast operand
 * (`aBatched` / `bBatched` false). Returns [batch, M, N] in float64.
 */
export function matmulRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dims: { M: number; N: number; K: number; batch?: number; transA?: boolean; transB?: boolean },
  aBatched = true,
  bBatched = true,
): Float64Array {
  const { M, N, K, batch = 1, transA = false, transB = false } = dims;
  const out = new Float64Array(batch * M * N);
  for (let bt = 0; bt < batch; bt++) {
    const ao = aBatched ? bt * M * K : 0;
    const bo = bBatched ? bt * K * N : 0;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = transA ? a[ao + k * M + i] : a[ao + i * K + k];
          const bv = transB ? b[bo + j * K + k] : b[bo + k * N + j];
          s += av * bv;
        }
        out[bt * M * N + i * N + j] = s;
      }
    }
  }
  return out;
}

/** x·wᵀ + bias for x [N,in], w [out,in], bias [out] (optional), in float64. */
export function linearRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | undefined,
  N: number,
  IN: number,
  OUT: number,
): Float64Array {
  const y = matmulRef(x, w, { M: N, N: OUT, K: IN, transB: true });
  if (bias) { for (let n = 0; n < N; n++) for (let o = 0; o < OUT; o++) y[n * OUT + o] += bias[o]; }
  return y;
}
