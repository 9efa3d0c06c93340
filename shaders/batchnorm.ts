/**
 * WGSL builders for 2-D batch normalisation over NCHW tensors (per channel over N, H, W).
 *
 * Per-channel reductions are split into chunks so that a channel with N·H·W = 262,144 elements is
 * reduced by hundreds of invocations: pass 1 writes per-(channel, chunk) partials, pass 2 (one invocation
 * per channel) combines them. A chunk is a run of whole H·W rows (images) or, when a row is longer than
 * the chunk target (large images), a piece of one row, so that no invocation's loops outgrow the loop
 * budget (`MAX_LOOP_TRIPS`) at any image size. Statistics use a per-chunk mean and sum of squared
 * deviations combined with Chan's parallel formula (no E[x²] − E[x]² cancellation).
 *
 * The `stats` tensor is [4, C]: mean, 1/σ, scale = γ/σ, shift = β − mean·scale.
 */
import { f32Lit, flatMain, loopTrips } from "./common.ts";

/** Geometry of a batch-norm problem and its chunking. */
export interface BnGeometry {
  /** Batch size N. */
  n: number;
  /** Channels C. */
  c: number;
  /** H·W. */
  s: number;
  /** Whole H·W rows (images) per chunk (1 when rows are split into pieces). */
  rowsPerChunk: number;
  /** Pieces each H·W row is split into (1: chunks of whole rows). */
  pieces: number;
  /** Elements per piece (the last piece of a row may be shorter; `s` when `pieces` is 1). */
  pieceLen: number;
  /** Chunks per channel: ceil(n / rowsPerChunk), or n·pieces. */
  chunks: number;
}

/** Elements one invocation of a pass-1 kernel aims to reduce. */
const CHUNK_TARGET = 1024;

/** At most this many chunks per channel: the finalize kernels loop over them twice. */
const MAX_CHUNKS = 16384;

/** Chooses the chunking of an [N, C, H·W] problem. */
export function bnGeometry(n: number, c: number, s: number): BnGeometry {
  const target = Math.max(CHUNK_TARGET, Math.ceil((n * s) / MAX_CHUNKS));
  if (s <= target) {
    const rowsPerChunk = Math.max(1, Math.min(n, Math.ceil(target / Math.max(1, s))));
    return { n, c, s, rowsPerChunk, pieces: 1, pieceLen: s, chunks: Math.ceil(n / rowsPerChunk) };
  }
  const pieces = Math.ceil(s / target);
  const pieceLen = Math.ceil(s / pieces);
  return { n, c, s, rowsPerChunk: 1, pieces, pieceLen, chunks: n * pieces };
}

/** Loop iterations of one `chunkLoop` (counted with `loopTrips`). */
function chunkLoopTrips(g: BnGeometry): number {
  if (g.pieces > 1) return loopTrips(g.pieceLen);
  return loopTrips(g.rowsPerChunk) + g.rowsPerChunk * loopTrips(g.s);
}

/**
 * The largest loop count (see `MAX_LOOP_TRIPS`) of any invocation of the batch-norm kernels of `g`: pass 1
 * of the statistics walks its chunk twice, the finalize kernels walk a channel's chunks twice.
 */
export function bnLoopTrips(g: BnGeometry): number {
  return Math.max(2 * chunkLoopTrips(g), 2 * loopTrips(g.chunks), loopTrips(RUN));
}

/** The WGSL loop header over the elements of chunk `k` of channel `ch`: `off` is the element offset. */
function chunkLoop(g: BnGeometry, body: string): string {
  if (g.pieces > 1) {
    return `  {
    let rowBase = (k / ${g.pieces}u) * ${g.c * g.s}u + ch * ${g.s}u;
    let e0 = (k % ${g.pieces}u) * ${g.pieceLen}u;
    let e1 = min(e0 + ${g.pieceLen}u, ${g.s}u);
    for (var e = e0; e < e1; e = e + 1u) {
      let off = rowBase + e;
${body}
    }
  }`;
  }
  return `  {
    let row1 = min(k * ${g.rowsPerChunk}u + ${g.rowsPerChunk}u, ${g.n}u);
    for (var row = k * ${g.rowsPerChunk}u; row < row1; row = row + 1u) {
      let rowBase = row * ${g.c * g.s}u + ch * ${g.s}u;
      for (var e = 0u; e < ${g.s}u; e = e + 1u) {
        let off = rowBase + e;
${body}
      }
    }
  }`;
}

function chunkHeader(g: BnGeometry): string {
  return `${flatMain(g.c * g.chunks)}
  let ch = i % ${g.c}u;
  let k = i / ${g.c}u;`;
}

/** WGSL expression of the element count of chunk `k`. */
function chunkCount(g: BnGeometry): string {
  if (g.pieces > 1) {
    const e0 = `(k % ${g.pieces}u) * ${g.pieceLen}u`;
    return `f32(min(${e0} + ${g.pieceLen}u, ${g.s}u) - ${e0})`;
  }
  return `f32((min(k * ${g.rowsPerChunk}u + ${g.rowsPerChunk}u, ${g.n}u) - k * ${g.rowsPerChunk}u) * ${g.s}u)`;
}

/** Pass 1 of the statistics: per (channel, chunk) the mean and the sum of squared deviations. */
export function bnStatsPartialBody(g: BnGeometry): string {
  return `${chunkHeader(g)}
  let cnt = ${chunkCount(g)};
  var total = 0.0;
${chunkLoop(g, "      total = total + x[off];")}
  let m = total / cnt;
  var m2 = 0.0;
${chunkLoop(g, "      let d = x[off] - m;\n      m2 = m2 + d * d;")}
  partial[ch * ${g.chunks}u + k] = m;
  partial[${g.c * g.chunks}u + ch * ${g.chunks}u + k] = m2;
}`;
}

/**
 * Pass 2 of the statistics (training): combines the partials into `stats` and updates the running
 * buffers in place (PyTorch: biased variance to normalise, unbiased n/(n−1) in `runningVar`).
 */
export function bnStatsFinalizeBody(g: BnGeometry, momentum: number, eps: number): string {
  const count = g.n * g.s;
  return `${flatMain(g.c)}
  let ch = i;
  var total = 0.0;
  for (var k = 0u; k < ${g.chunks}u; k = k + 1u) {
    let cnt = ${chunkCount(g)};
    total = total + cnt * partial[ch * ${g.chunks}u + k];
  }
  let mean = total / ${f32Lit(count)};
  var m2 = 0.0;
  for (var k = 0u; k < ${g.chunks}u; k = k + 1u) {
    let cnt = ${chunkCount(g)};
    let d = partial[ch * ${g.chunks}u + k] - mean;
    m2 = m2 + partial[${g.c * g.chunks}u + ch * ${g.chunks}u + k] + cnt * d * d;
  }
  let variance = m2 / ${f32Lit(count)};
  let invstd = 1.0 / sqrt(variance + ${f32Lit(eps)});
  let scale = gamma[ch] * invstd;
  stats[ch] = mean;
  stats[${g.c}u + ch] = invstd;
  stats[${2 * g.c}u + ch] = scale;
  stats[${3 * g.c}u + ch] = beta[ch] - mean * scale;
  runningMean[ch] = ${f32Lit(1 - momentum)} * runningMean[ch] + ${f32Lit(momentum)} * mean;
  runningVar[ch] = ${f32Lit(1 - momentum)} * runningVar[ch] + ${f32Lit(momentum / (count - 1))} * m2;
}`;
}

/** The statistics of evaluation mode, from the running buffers. */
export function bnEvalStatsBody(c: number, eps: number): string {
  return `${flatMain(c)}
  let invstd = 1.0 / sqrt(runningVar[i] + ${f32Lit(eps)});
  let scale = gamma[i] * invstd;
  stats[i] = runningMean[i];
  stats[${c}u + i] = invstd;
  stats[${2 * c}u + i] = scale;
  stats[${3 * c}u + i] = beta[i] - runningMean[i] * scale;
}`;
}

/** Elements of one H·W row an invocation of the normalise/apply kernels handles (amortises indexing). */
const RUN = 8;

/** Header of a kernel over runs of ≤ RUN elements of one (image, channel) row: `ch`, `e0`, `e1`, `base`. */
function runHeader(g: BnGeometry): string {
  const per = Math.ceil(g.s / RUN);
  return `${flatMain(g.n * g.c * per)}
  let row = i / ${per}u;
  let ch = row % ${g.c}u;
  let e0 = row * ${g.s}u + (i % ${per}u) * ${RUN}u;
  let e1 = min(e0 + ${RUN}u, (row + 1u) * ${g.s}u);`;
}

/** `y = x·scale[c] + shift[c]`, optionally followed by ReLU. */
export function bnNormalizeBody(g: BnGeometry, relu: boolean): string {
  return `${runHeader(g)}
  let scale = stats[${2 * g.c}u + ch];
  let shift = stats[${3 * g.c}u + ch];
  for (var j = e0; j < e1; j = j + 1u) {
    let y = x[j] * scale + shift;
    out[j] = ${relu ? "max(y, 0.0)" : "y"};
  }
}`;
}

/** The gradient at the normalised output, with the fused ReLU's mask recomputed from x. */
function dyExpr(g: BnGeometry, relu: boolean, off: string): string {
  if (!relu) return `dy[${off}]`;
  return `select(0.0, dy[${off}], x[${off}] * stats[${2 * g.c}u + ch] + stats[${3 * g.c}u + ch] > 0.0)`;
}

/** Backward pass 1: per (channel, chunk) Σ dy and Σ dy·x̂. */
export function bnBackwardPartialBody(g: BnGeometry, relu: boolean): string {
  return `${chunkHeader(g)}
  let mean = stats[ch];
  let invstd = stats[${g.c}u + ch];
  var sdy = 0.0;
  var sdyx = 0.0;
${
    chunkLoop(
      g,
      `      let gy = ${
        dyExpr(g, relu, "off")
      };\n      sdy = sdy + gy;\n      sdyx = sdyx + gy * (x[off] - mean) * invstd;`,
    )
  }
  partial[ch * ${g.chunks}u + k] = sdy;
  partial[${g.c * g.chunks}u + ch * ${g.chunks}u + k] = sdyx;
}`;
}

/**
 * Backward pass 2: dγ = Σ dy·x̂, dβ = Σ dy, and the coefficients of dx ([3, C]: γ/σ, mean(dy),
 * mean(dy·x̂); the means are 0 in evaluation mode, where the statistics are constants).
 */
export function bnBackwardFinalizeBody(g: BnGeometry, training: boolean): string {
  const count = g.n * g.s;
  return `${flatMain(g.c)}
  let ch = i;
  var sdy = 0.0;
  var sdyx = 0.0;
  for (var k = 0u; k < ${g.chunks}u; k = k + 1u) {
    sdy = sdy + partial[ch * ${g.chunks}u + k];
    sdyx = sdyx + partial[${g.c * g.chunks}u + ch * ${g.chunks}u + k];
  }
  dgamma[ch] = sdyx;
  dbeta[ch] = sdy;
  coef[ch] = stats[${2 * g.c}u + ch];
  coef[${g.c}u + ch] = ${training ? `sdy / ${f32Lit(count)}` : "0.0"};
  coef[${2 * g.c}u + ch] = ${training ? `sdyx / ${f32Lit(count)}` : "0.0"};
}`;
}

/** Backward pass 3: dx = (γ/σ)·(dy − mean(dy) − x̂·mean(dy·x̂)). */
export function bnBackwardApplyBody(g: BnGeometry, relu: boolean): string {
  return `${runHeader(g)}
  let mean = stats[ch];
  let invstd = stats[${g.c}u + ch];
  let a = coef[ch];
  let b = coef[${g.c}u + ch];
  let c = coef[${2 * g.c}u + ch];
  for (var j = e0; j < e1; j = j + 1u) {
    let xhat = (x[j] - mean) * invstd;
    let gy = ${dyExpr(g, relu, "j")};
    dx[j] = a * (gy - b - xhat * c);
  }
}`;
}

/** Invocations of the normalise and apply kernels (runs of up to 8 elements of one H·W row). */
export function bnRunInvocations(g: BnGeometry): number {
  return g.n * g.c * Math.ceil(g.s / RUN);
}
