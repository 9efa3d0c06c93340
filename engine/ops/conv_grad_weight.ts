/**
 * Convolution grad weight: dw[o, (kh,kw,c)] = Σ_{(n,oh,ow)} dy[o, (n,oh,ow)] · xq[(n,oh,ow), (kh,kw,c)]
 * over a zero-padded channels-last copy xq of x (a transient copy; both operands then load aligned vec4s
 * as in a plain matmul: ResNet's 3×3 layers went from 20–24 to 28–33 GFLOP/s per 2 cores on llvmpipe)
 * (M = O, N = KH·KW·C, K = batch·OH·OW). Strided 1×1 kernels contract the subsampled x instead. A small
 * output is split over images (split-K, partial sums added in a fixed order), a large batch is worked
 * through in chunks of images.
 *
 * @module
 */
import { gpu } from "../gpu.ts";
import { empty, type Tensor } from "../tensor.ts";
import { flatMain, grid1d } from "../../shaders/common.ts";
import { fitTiling, type GemmHooks, type GemmTiling } from "../../shaders/gemm.ts";
import { dispatchGemm, gemmTiling } from "./matmul.ts";
import { channelsLastCopy, imagesOf, imagesPerChunk } from "./conv_channels_last.ts";
import { type ConvGeometry, inputLayout, label, splitPixel, subsample, xAtDecl } from "./conv_common.ts";

/**
 * Grad-weight hooks: A = dy [O, N·OH·OW], B[(n,oh,ow), (t, c)] = xq[n, oh·s + kh, ow·s + kw, c]
 * (tap t = kh·KW + kw, channels innermost, from the padded channels-last copy `xq`), so both operands
 * load aligned vec4s as in a plain matmul; C → dw (OIHW; the columns of padding channels are dropped).
 */
function gradWeightHooks(g: ConvGeometry, kChunk = 0, accumulate = false): GemmHooks {
  const OHW = g.OH * g.OW;
  const KK = g.KH * g.KW;
  const CKK = g.C * KK;
  const { layout: { Hq: Hp, Wq: Wp, Cq: Cp }, s } = inputLayout(g);
  const dyVec = OHW % 4 === 0;
  // Split-K: GEMM batch entry b contracts over pixels b·kChunk .. (b+1)·kChunk − 1 and writes its own
  // partial sum; without split the batch is 1 and k is already global.
  const kg = kChunk ? `(b * ${kChunk}u + k)` : "k";
  const dyIndex = (k: string) => `(${k} / ${OHW}u * ${g.O}u + row) * ${OHW}u + ${k} % ${OHW}u`;
  const rowBase = kChunk ? `(b * ${g.O}u + row) * ${CKK}u` : `row * ${CKK}u`;
  const splitCol = KK === 1 ? "let t = 0u; let c = col;" : `let t = col / ${Cp}u; let c = col % ${Cp}u;`;
  const store = accumulate ? "dw[e] = dw[e] + v;" : "dw[e] = v;";
  const xqIndex = `${splitPixel(g, kg)} let t = col / ${Cp}u; let c = col % ${Cp}u;
  let kh = t / ${g.KW}u; let kw = t % ${g.KW}u;
  let e = ((n * ${Hp}u + u32(oh) * ${s}u + kh) * ${Wp}u + u32(ow) * ${s}u + kw) * ${Cp}u + c;`;
  const hooks: GemmHooks = {
    decls: `@group(0) @binding(0) var<storage, read> xq: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> dy: array<${dyVec ? "vec4<f32>" : "f32"}>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;`,
    readA: dyVec ? `let i = ${dyIndex(kg)}; return dy[i / 4u][i % 4u];` : `return dy[${dyIndex(kg)}];`,
    readB: `${xqIndex} return xq[e / 4u][e % 4u];`,
    readB4: `${xqIndex} return xq[e / 4u];`,
    // With `accumulate` (all but the first image chunk, see conv2dGradWeightInto) the GEMM adds to dw.
    writeC: `${splitCol} let e = ${rowBase} + c * ${KK}u + t; ` +
      (Cp === g.C ? store : `if (c < ${g.C}u) { ${store} }`),
  };
  if (dyVec) hooks.readA4 = `return dy[(${dyIndex(kg)}) / 4u];`;
  return hooks;
}

/** Records the grad-weight GEMM into `dw` [O, C, KH, KW]. */
export function conv2dGradWeightInto(dw: Tensor, x: Tensor, dy: Tensor, g: ConvGeometry): void {
  const P = g.OH * g.OW;
  if (
    !gemmTiling().useWorkgroupMemory && g.C * g.KH * g.KW <= SHORT_ROWS && g.KH * g.KW > 1 &&
    g.OW % 4 === 0 &&
    g.O % 8 === 0
  ) {
    gradWeightShortRowsInto(dw, x, dy, g);
    return;
  }
  if (
    !gemmTiling().useWorkgroupMemory && g.KH === 1 && g.KW === 1 && g.pad === 0 && g.stride > 1 && P % 4 === 0
  ) {
    gradWeightStrided1x1Into(dw, x, dy, g);
    return;
  }
  const M = g.O;
  const { layout } = inputLayout(g);
  const N = g.KH * g.KW * layout.Cq;
  const name = `conv2d.gradWeight ${label(g)}`;
  const images = imagesPerChunk(g.N, layout.Hq * layout.Wq * layout.Cq * 4, [x, dy]);
  if (images < g.N) {
    // A large batch: chunks of images in turn, each GEMM adding its partial sum to dw (in order).
    const gc = { ...g, N: images };
    const sizes = { M, N, K: images * g.OH * g.OW, batch: 1 };
    for (let n0 = 0; n0 < g.N; n0 += images) {
      const xc = imagesOf(x, n0, images);
      const dyc = imagesOf(dy, n0, images);
      const xq = channelsLastCopy(xc, layout, name);
      dispatchGemm(name, sizes, gradWeightHooks(gc, 0, n0 > 0), [xq, dyc, dw]);
      for (const t of [xq, xc, dyc]) t.dispose();
    }
    return;
  }
  const xq = channelsLastCopy(x, layout, name);
  const groups = gradWeightSplit(g);
  if (groups === 1) {
    const sizes = { M, N, K: g.N * g.OH * g.OW, batch: 1 };
    dispatchGemm(name, sizes, gradWeightHooks(g), [xq, dy, dw]);
    xq.dispose();
    return;
  }
  // Split-K over groups of images: one partial dw per group (GEMM batch along z), then a second pass
  // sums the partials in a fixed order (deterministic, no atomics).
  const kChunk = (g.N / groups) * g.OH * g.OW;
  const CKK = g.C * g.KH * g.KW;
  const part = empty([groups, M, CKK]);
  const sizes = { M, N, K: kChunk, batch: groups };
  dispatchGemm(name, sizes, gradWeightHooks(g, kChunk), [xq, dy, part]);
  xq.dispose();
  sumPartials(`conv2d.gradWeight.reduce ${label(g)}`, part, dw, groups, M * CKK);
  part.dispose();
}

/**
 * Grad weight of a strided 1×1 convolution as dwᵀ[c, o] = Σ_p xs[c, p] · dy[o, p] over the subsampled x
 * (see `subsample`): both operands contraction-major (pixels contiguous), so the template's dot-product
 * kernel loads vec4s on both sides, and C (rows) by O (columns) keeps 16-wide column blocks. Large
 * batches go in chunks of images (each copy ≤ the channels-last chunk size), adding in order.
 */
function gradWeightStrided1x1Into(dw: Tensor, x: Tensor, dy: Tensor, g: ConvGeometry): void {
  const P = g.OH * g.OW;
  const images = imagesPerChunk(g.N, g.C * P * 4, [x, dy]);
  const gc = { ...g, N: images };
  const groups = images === g.N ? splitOverImages(gc, g.C, g.O) : 1;
  const kChunk = (images / groups) * P;
  const part = groups > 1 ? empty([groups, g.O, g.C]) : null;
  const name = `conv2d.gradWeight ${label(g)}`;
  for (let n0 = 0; n0 < g.N; n0 += images) {
    const xc = imagesOf(x, n0, images);
    const dyc = imagesOf(dy, n0, images);
    const xs = subsample(xc, gc);
    const split = `let kg = b * ${kChunk}u + k; let n = kg / ${P}u; let q = kg % ${P}u;`;
    const xsIndex = `(n * ${g.C}u + row) * ${P}u + q`;
    const dyIndex = `(n * ${g.O}u + col) * ${P}u + q`;
    const store = n0 > 0 ? "out[e] = out[e] + v;" : "out[e] = v;";
    const hooks: GemmHooks = {
      decls: `@group(0) @binding(0) var<storage, read> xs: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;`,
      readA: `${split} let e = ${xsIndex}; return xs[e / 4u][e % 4u];`,
      readA4: `${split} return xs[(${xsIndex}) / 4u];`,
      readB: `${split} let e = ${dyIndex}; return dy[e / 4u][e % 4u];`,
      readBT4: `${split} return dy[(${dyIndex}) / 4u];`,
      writeC: `let e = (b * ${g.O}u + col) * ${g.C}u + row; ${store}`,
    };
    const sizes = { M: g.C, N: g.O, K: kChunk, batch: groups };
    dispatchGemm(name, sizes, hooks, [xs, dyc, part ?? dw]);
    for (const t of [xs, xc, dyc]) t.dispose();
  }
  if (part) {
    sumPartials(`conv2d.gradWeight.reduce ${label(g)}`, part, dw, groups, g.O * g.C);
    part.dispose();
  }
}

/** Taps (C·KH·KW) up to which grad weight takes one register block per row of dwᵀ (the 3-channel stem). */
const SHORT_ROWS = 32;

/**
 * Grad weight of a convolution with few taps (the stem: 3·3·3 = 27) as dwᵀ[(c,kh,kw), o] =
 * Σ_p im2col(x)[(c,kh,kw), p] · dy[o, p], over an explicit im2col copy with pixels contiguous (27 rows of
 * the batch's pixels: the size of x times the kernel area, made in chunks of images for a large batch). Both
 * operands are then contraction-major (the dot-product kernel, vec4 loads on both sides), and one register
 * block of all C·KH·KW rows by 8 columns per invocation wastes no row, where the channels-last route's
 * 36-column rows left most of its blocks empty.
 */
function gradWeightShortRowsInto(dw: Tensor, x: Tensor, dy: Tensor, g: ConvGeometry): void {
  const P = g.OH * g.OW;
  const R = g.C * g.KH * g.KW;
  const images = imagesPerChunk(g.N, R * P * 4, [x, dy]);
  const gc = { ...g, N: images };
  // All R rows in one block, 8 columns per invocation (measured 19.8 GFLOP/s per 2 cores for the stem at
  // batch 8; 9 or 3 rows per invocation, or 4 or 16 columns, 11–20).
  const tiling: GemmTiling = {
    tileM: R,
    tileN: 64,
    tileK: 4,
    threadM: R,
    threadN: 8,
    useWorkgroupMemory: false,
  };
  // Split over images as `splitOverImages` would for one row tile and O / 64 column tiles.
  let groups = 1;
  if (images === g.N) {
    const tiles = Math.ceil(g.O / 64);
    for (let d = 2; d <= g.N; d++) {
      if (g.N % d !== 0 || (g.N / d) * P < SPLIT_MIN_K) continue;
      groups = d;
      if (tiles * d >= SPLIT_MIN_TILES * 2) break;
    }
  }
  const kChunk = (images / groups) * P;
  const part = groups > 1 ? empty([groups, g.O, R]) : null;
  const name = `conv2d.gradWeight ${label(g)}`;
  for (let n0 = 0; n0 < g.N; n0 += images) {
    const xc = imagesOf(x, n0, images);
    const dyc = imagesOf(dy, n0, images);
    const cols = im2colRows(xc, gc);
    const Np = images * P;
    const split = `let kg = b * ${kChunk}u + k; let n = kg / ${P}u; let q = kg % ${P}u;`;
    const dyIndex = `(n * ${g.O}u + col) * ${P}u + q`;
    const store = n0 > 0 ? "out[e] = out[e] + v;" : "out[e] = v;";
    const hooks: GemmHooks = {
      decls: `@group(0) @binding(0) var<storage, read> cols: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;`,
      readA: `let e = row * ${Np}u + b * ${kChunk}u + k; return cols[e / 4u][e % 4u];`,
      readA4: `return cols[(row * ${Np}u + b * ${kChunk}u + k) / 4u];`,
      readB: `${split} let e = ${dyIndex}; return dy[e / 4u][e % 4u];`,
      readBT4: `${split} return dy[(${dyIndex}) / 4u];`,
      writeC: `let e = (b * ${g.O}u + col) * ${R}u + row; ${store}`,
    };
    const sizes = { M: R, N: g.O, K: kChunk, batch: groups };
    dispatchGemm(name, sizes, hooks, [cols, dyc, part ?? dw], tiling);
    for (const t of [cols, xc, dyc]) t.dispose();
  }
  if (part) {
    sumPartials(`conv2d.gradWeight.reduce ${label(g)}`, part, dw, groups, g.O * R);
    part.dispose();
  }
}

/** im2col(x) as [C·KH·KW, N·OH·OW], pixels contiguous (zero where a tap falls in the padding). */
function im2colRows(x: Tensor, g: ConvGeometry): Tensor {
  const P = g.OH * g.OW;
  const R = g.C * g.KH * g.KW;
  const n = (R * g.N * P) / 4;
  const cols = empty([R, g.N * P]);
  const s = g.stride;
  const loads = [0, 1, 2, 3].map((j) => `v[${j}] = xAt(nn, c, ih, iw + ${j * s});`).join(" ");
  const code = `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> cols: array<vec4<f32>>;
${xAtDecl(g)}
${flatMain(n, 64)}
  let p = (i % ${(g.N * P) / 4}u) * 4u; let r = i / ${(g.N * P) / 4}u;
  let nn = p / ${P}u; let q = p % ${P}u; let oh = i32(q / ${g.OW}u); let ow = i32(q % ${g.OW}u);
  let c = r / ${g.KH * g.KW}u; let t = r % ${g.KH * g.KW}u;
  let ih = oh * ${s} + i32(t / ${g.KW}u) - ${g.pad}; let iw = ow * ${s} + i32(t % ${g.KW}u) - ${g.pad};
  var v: vec4<f32>;
  ${loads}
  cols[i] = v;
}`;
  gpu().dispatch({ name: `conv2d.im2colRows ${label(g)}`, code }, [x.range, cols.range], grid1d(n, 64));
  return cols;
}

/** Output tiles below which grad weight is split over the contraction (few, long-K tiles). */
const SPLIT_MIN_TILES = 16;

/** Shortest contraction chunk of a split (pixels per partial sum). */
const SPLIT_MIN_K = 512;

/**
 * Number of image groups the grad-weight contraction (N·OH·OW) is split into: 1 unless the output
 * dw (O × C·KH·KW) is too small to keep the adapter busy and the contraction is long (the stem
 * 3→64 has a 64×27 output and an 8192-long contraction at batch 8). Groups divide the batch.
 */
export function gradWeightSplit(g: ConvGeometry): number {
  return splitOverImages(g, g.O, g.C * g.KH * g.KW);
}

/** Image groups for a split-K GEMM of an M×N output contracted over the batch's pixels (see above). */
function splitOverImages(g: ConvGeometry, M: number, N: number): number {
  const t = gemmTiling();
  const tiled = t.useWorkgroupMemory ? t : fitTiling(t, M, N);
  const tiles = Math.ceil(M / tiled.tileM) * Math.ceil(N / tiled.tileN);
  if (tiles >= SPLIT_MIN_TILES) return 1;
  const OHW = g.OH * g.OW;
  let best = 1;
  for (let d = 2; d <= g.N; d++) {
    if (g.N % d !== 0 || (g.N / d) * OHW < SPLIT_MIN_K) continue;
    best = d;
    if (tiles * d >= SPLIT_MIN_TILES * 2) break;
  }
  return best;
}

/** out[i] = Σ_g part[g·n + i] over `groups` partials of `n` elements, summed in order g = 0, 1, …. */
function sumPartials(name: string, part: Tensor, out: Tensor, groups: number, n: number): void {
  const vec = n % 4 === 0;
  const len = vec ? n / 4 : n;
  const type = vec ? "vec4<f32>" : "f32";
  const terms = Array.from({ length: groups - 1 }, (_, k) => `  s = s + p[i + ${(k + 1) * len}u];`);
  const code = `@group(0) @binding(0) var<storage, read> p: array<${type}>;
@group(0) @binding(1) var<storage, read_write> o: array<${type}>;
${flatMain(len, 64)}
  var s = p[i];
${terms.join("\n")}
  o[i] = s;
}`;
  gpu().dispatch({ name, code }, [part.range, out.range], grid1d(len, 64));
}
