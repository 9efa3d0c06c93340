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
import { type KernelBinding, read, runKernel, write } from "../program.ts";
import { empty, type Tensor } from "../tensor.ts";
import { flatMain, grid1d } from "../../shaders/common.ts";
import { fitTiling, type GemmHooks, type GemmTiling } from "../../shaders/gemm.ts";
import { dispatchGemm, gemmTiling } from "./matmul.ts";
import { channelsLastCopy, imagesOf, imagesPerChunk } from "./conv_channels_last.ts";
import { type ConvGeometry, inputLayout, label, splitPixel, subsample, xAtDecl } from "./conv_common.ts";
import { gradWeightPixels } from "./conv_taps.ts";

/**
 * One way to compute grad weight as GEMMs over the batch's pixels: the transient operand made from (a chunk
 * of) x, and the hooks of C = dw (or of dwᵀ) with the contraction index k → pixel kg = b·kChunk + k, where
 * GEMM batch entry b is one split-K group. Every route writes C in dw's own OIHW order at offset
 * b·O·C·KH·KW, so partial sums of groups add up with `sumPartials`, and with `accumulate` (every image chunk
 * but the first) it adds into dw instead of storing.
 */
interface GradWeightRoute {
  /** GEMM rows and columns. */
  M: number;
  N: number;
  /** Bytes of the transient operand per image (for `imagesPerChunk`). */
  bytesPerImage: number;
  /** The transient operand for the images of `x` (geometry `gc`). */
  operand(x: Tensor, gc: ConvGeometry): Tensor;
  /** Hooks for images of geometry `gc`, contraction chunk `kChunk` per group. */
  hooks(gc: ConvGeometry, kChunk: number, accumulate: boolean): GemmHooks;
  /** The bindings the hooks use: the transient operand, dy (a chunk of images) and the output. */
  bindings(operand: Tensor, dy: Tensor, out: Tensor): KernelBinding[];
  /** A tiling that fits this GEMM's shape exactly (else the adapter's). */
  tiling?: GemmTiling;
}

/**
 * The general route: A = dy [O, N·OH·OW], B[(n,oh,ow), (t, c)] = xq[n, oh·s + kh, ow·s + kw, c] (tap
 * t = kh·KW + kw, channels innermost, from the padded channels-last copy `xq`), so both operands load aligned
 * vec4s as in a plain matmul; C → dw (OIHW; the columns of padding channels are dropped).
 */
function channelsLastRoute(g: ConvGeometry): GradWeightRoute {
  const OHW = g.OH * g.OW;
  const KK = g.KH * g.KW;
  const CKK = g.C * KK;
  const { layout, s } = inputLayout(g);
  const { Hq, Wq, Cq } = layout;
  const dyVec = OHW % 4 === 0;
  // Workgroup tiles: the contraction index (a pixel) splits through a table (`conv_taps.ts`), not by division.
  const pixels = gemmTiling().useWorkgroupMemory;
  return {
    M: g.O,
    N: KK * Cq,
    bytesPerImage: Hq * Wq * Cq * 4,
    operand: (x) => channelsLastCopy(x, layout, `conv2d.gradWeight ${label(g)}`),
    hooks(gc, kChunk, accumulate) {
      const kg = `(b * ${kChunk}u + k)`;
      if (pixels) {
        const store = accumulate ? "dw[e] = dw[e] + v;" : "dw[e] = v;";
        const dyIndex = `u32(pix[${kg}].x) + row * ${OHW}u`;
        const xqIndex = `let t = col / ${Cq}u; let c = col % ${Cq}u;
  let e = u32(pix[${kg}].y) + ((t / ${g.KW}u) * ${Wq}u + t % ${g.KW}u) * ${Cq}u + c;`;
        const hooks: GemmHooks = {
          decls: "",
          readA: dyVec ? `let i = ${dyIndex}; return dy[i / 4u][i % 4u];` : `return dy[${dyIndex}];`,
          readB: `${xqIndex} return xq[e / 4u][e % 4u];`,
          readB4: `${xqIndex} return xq[e / 4u];`,
          writeC:
            `let t = col / ${Cq}u; let c = col % ${Cq}u; let e = (b * ${g.O}u + row) * ${CKK}u + c * ${KK}u + t; ` +
            (Cq === g.C ? store : `if (c < ${g.C}u) { ${store} }`),
        };
        if (dyVec) hooks.readA4 = `return dy[(${dyIndex}) / 4u];`;
        return hooks;
      }
      const dyIndex = `(${kg} / ${OHW}u * ${g.O}u + row) * ${OHW}u + ${kg} % ${OHW}u`;
      const store = accumulate ? "dw[e] = dw[e] + v;" : "dw[e] = v;";
      const xqIndex = `${splitPixel(gc, kg)} let t = col / ${Cq}u; let c = col % ${Cq}u;
  let kh = t / ${g.KW}u; let kw = t % ${g.KW}u;
  let e = ((n * ${Hq}u + u32(oh) * ${s}u + kh) * ${Wq}u + u32(ow) * ${s}u + kw) * ${Cq}u + c;`;
      const hooks: GemmHooks = {
        decls: "",
        readA: dyVec ? `let i = ${dyIndex}; return dy[i / 4u][i % 4u];` : `return dy[${dyIndex}];`,
        readB: `${xqIndex} return xq[e / 4u][e % 4u];`,
        readB4: `${xqIndex} return xq[e / 4u];`,
        writeC:
          `let t = col / ${Cq}u; let c = col % ${Cq}u; let e = (b * ${g.O}u + row) * ${CKK}u + c * ${KK}u + t; ` +
          (Cq === g.C ? store : `if (c < ${g.C}u) { ${store} }`),
      };
      if (dyVec) hooks.readA4 = `return dy[(${dyIndex}) / 4u];`;
      return hooks;
    },
    bindings: (xq, dy, dw) => [
      read("xq", xq, "array<vec4<f32>>"),
      read("dy", dy, dyVec ? "array<vec4<f32>>" : "array<f32>"),
      write("dw", dw),
      ...(pixels ? [gradWeightPixels(g, dy.shape[0], { Hq, Wq, Cq, s })] : []),
    ],
  };
}

/**
 * dwᵀ[r, o] = Σ_p A[r, p] · dy[o, p] with A's rows pixel-contiguous (`aIndex`: the WGSL index of A[row] at
 * pixel q of image n, chunk-local kg = n·P + q): both operands contraction-major, so the template's
 * dot-product kernel loads vec4s on both sides. Shared by the strided 1×1 route (A = the subsampled x
 * [N, C, P], r = c) and the short-rows route (A = an explicit im2col [C·KH·KW, N·P], r = (c, kh, kw));
 * either way r indexes dw[o] in OIHW order.
 */
function transposedRoute(
  g: ConvGeometry,
  rows: number,
  operand: (x: Tensor, gc: ConvGeometry) => Tensor,
  aIndex: (gc: ConvGeometry) => string,
  tiling?: GemmTiling,
): GradWeightRoute {
  const P = g.OH * g.OW;
  return {
    M: rows,
    N: g.O,
    bytesPerImage: rows * P * 4,
    operand,
    tiling,
    hooks(gc, kChunk, accumulate) {
      const split = `let kg = b * ${kChunk}u + k; let n = kg / ${P}u; let q = kg % ${P}u;`;
      const dyIndex = `(n * ${g.O}u + col) * ${P}u + q`;
      const store = accumulate ? "out[e] = out[e] + v;" : "out[e] = v;";
      return {
        decls: "",
        readA: `${split} let e = ${aIndex(gc)}; return a[e / 4u][e % 4u];`,
        readA4: `${split} return a[(${aIndex(gc)}) / 4u];`,
        readB: `${split} let e = ${dyIndex}; return dy[e / 4u][e % 4u];`,
        readBT4: `${split} return dy[(${dyIndex}) / 4u];`,
        writeC: `let e = (b * ${g.O}u + col) * ${rows}u + row; ${store}`,
      };
    },
    bindings: (
      a,
      dy,
      out,
    ) => [read("a", a, "array<vec4<f32>>"), read("dy", dy, "array<vec4<f32>>"), write("out", out)],
  };
}

/** Taps (C·KH·KW) up to which grad weight takes one register block per row of dwᵀ (the 3-channel stem). */
const SHORT_ROWS = 32;

/**
 * The route for `g` on the current adapter:
 * - strided 1×1 kernels contract the subsampled x (C × O output, 16-wide column blocks);
 * - few taps (the stem: 3·3·3 = 27) contract an explicit im2col (the size of x times the kernel area) with
 *   one register block of all 27 rows by 8 columns, where the channels-last route's 36-column rows left
 *   most of its blocks empty (stem 13.3 → 19.8 GFLOP/s per 2 cores; 9 or 3 rows per invocation, or 4 or 16
 *   columns, measured 11–20);
 * - else the channels-last route. The first two need the dot-product register kernel.
 */
function gradWeightRoute(g: ConvGeometry): GradWeightRoute {
  const P = g.OH * g.OW;
  const R = g.C * g.KH * g.KW;
  if (!gemmTiling().useWorkgroupMemory && P % 4 === 0) {
    if (g.KH === 1 && g.KW === 1 && g.pad === 0 && g.stride > 1) {
      return transposedRoute(g, g.C, subsample, () => `(n * ${g.C}u + row) * ${P}u + q`);
    }
    if (R <= SHORT_ROWS && g.KH * g.KW > 1 && g.OW % 4 === 0 && g.O % 8 === 0) {
      const tiling = { tileM: R, tileN: 64, tileK: 4, threadM: R, threadN: 8, useWorkgroupMemory: false };
      return transposedRoute(g, R, im2colRows, (gc) => `row * ${gc.N * P}u + kg`, tiling);
    }
  }
  return channelsLastRoute(g);
}

/**
 * Records the grad-weight GEMMs into `dw` [O, C, KH, KW] along the route for `g`: a large batch in chunks of
 * images (each transient operand ≤ the channels-last chunk size), each chunk's GEMM adding to dw in order;
 * a whole batch with a small output split over groups of images (GEMM batch along z), whose partial sums a
 * second pass adds in a fixed order (deterministic, no atomics).
 */
export function conv2dGradWeightInto(dw: Tensor, x: Tensor, dy: Tensor, g: ConvGeometry): void {
  const route = gradWeightRoute(g);
  const P = g.OH * g.OW;
  const CKK = g.C * g.KH * g.KW;
  const images = imagesPerChunk(g.N, route.bytesPerImage, [x, dy]);
  const gc = { ...g, N: images };
  const groups = images === g.N ? splitOverImages(g, route.M, route.N, route.tiling) : 1;
  const kChunk = (images / groups) * P;
  const part = groups > 1 ? empty([groups, g.O, CKK]) : null;
  const name = `conv2d.gradWeight ${label(g)}`;
  const sizes = { M: route.M, N: route.N, K: kChunk, batch: groups };
  for (let n0 = 0; n0 < g.N; n0 += images) {
    const xc = imagesOf(x, n0, images);
    const dyc = imagesOf(dy, n0, images);
    const a = route.operand(xc, gc);
    const gemm = { hooks: route.hooks(gc, kChunk, n0 > 0), bindings: route.bindings(a, dyc, part ?? dw) };
    dispatchGemm(name, sizes, gemm, route.tiling);
    for (const t of [a, xc, dyc]) t.dispose();
  }
  if (part) {
    sumPartials(`conv2d.gradWeight.reduce ${label(g)}`, part, dw, groups, g.O * CKK);
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
  const body = `${xAtDecl(g)}
${flatMain(n, 64)}
  let p = (i % ${(g.N * P) / 4}u) * 4u; let r = i / ${(g.N * P) / 4}u;
  let nn = p / ${P}u; let q = p % ${P}u; let oh = i32(q / ${g.OW}u); let ow = i32(q % ${g.OW}u);
  let c = r / ${g.KH * g.KW}u; let t = r % ${g.KH * g.KW}u;
  let ih = oh * ${s} + i32(t / ${g.KW}u) - ${g.pad}; let iw = ow * ${s} + i32(t % ${g.KW}u) - ${g.pad};
  var v: vec4<f32>;
  ${loads}
  cols[i] = v;
}`;
  runKernel({
    name: `conv2d.im2colRows ${label(g)}`,
    bindings: [read("x", x), write("cols", cols, "array<vec4<f32>>")],
    body,
    workgroups: grid1d(n, 64),
  });
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
  const route = gradWeightRoute(g);
  return splitOverImages(g, route.M, route.N, route.tiling);
}

/** Image groups for a split-K GEMM of an M×N output contracted over the batch's pixels (see above). */
function splitOverImages(g: ConvGeometry, M: number, N: number, t: GemmTiling = gemmTiling()): number {
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
  const body = `${flatMain(len, 64)}
  var s = p[i];
${terms.join("\n")}
  o[i] = s;
}`;
  const bindings = [read("p", part, `array<${type}>`), write("o", out, `array<${type}>`)];
  runKernel({ name, bindings, body, workgroups: grid1d(len, 64) });
}
