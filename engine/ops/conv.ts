/**
 * 2-D convolution (NCHW input, OIHW weight, no bias) as three implicit GEMMs through the template of
 * `shaders/gemm.ts`; nothing is unfolded into memory:
 *
 * - forward: y[o, (n,oh,ow)] = Σ_{(c,kh,kw)} w[o, (c,kh,kw)] · im2col(x)[(c,kh,kw), (n,oh,ow)]
 *   (M = O, N = batch·OH·OW, K = C·KH·KW; the im2col addressing and zero padding live in readB).
 * - grad input: a transposed convolution gathered from dy, split into stride² phases (pixels with
 *   ih ≡ ph, iw ≡ pw mod stride). In one phase only taps kh ≡ ph + pad (mod stride) reach the pixel,
 *   so each phase is a dense GEMM (M = C, N = batch·pixels of the phase, K = O·taps) with no wasted
 *   products even at stride 2; the kernel is re-laid out per phase as [C, O, taps] (a small copy, so
 *   weight loads are vec4 and the contraction is channel-major like the forward's); readB checks the
 *   dy bounds.
 * - grad weight: dw[o, (kh,kw,c)] = Σ_{(n,oh,ow)} dy[o, (n,oh,ow)] · xq[(n,oh,ow), (kh,kw,c)] over a
 *   zero-padded channels-last copy xq of x (a transient copy; both operands then load aligned vec4s
 *   as in a plain matmul, measured 20–24 → 28–33 GFLOP/s per 2 cores on llvmpipe for ResNet's 3×3
 *   layers) (M = O, N = KH·KW·C, K = batch·OH·OW).
 */
import { gpu } from "../gpu.ts";
import { empty, fmtShape, ShapeError, type Tensor } from "../tensor.ts";
import { flatMain, grid1d } from "../../shaders/common.ts";
import { gradTarget, record } from "../autograd.ts";
import { fitTiling, type GemmHooks, UNROLL_K } from "../../shaders/gemm.ts";
import { dispatchGemm, gemmTiling } from "./matmul.ts";
import {
  channelsLastCopy,
  type ChannelsLastGemm,
  channelsLastGemmsInto,
  type ChannelsLastLayout,
  imagesOf,
  imagesPerChunk,
  vec4Channels,
} from "./conv_channels_last.ts";

/** Options of `conv2d`. */
export interface Conv2dOptions {
  /** Step between output pixels (both axes). Default 1. */
  stride?: number;
  /** Zero padding on every side. Default 0. */
  padding?: number;
}

/** All sizes of one convolution. */
export interface ConvGeometry {
  /** Batch size. */
  N: number;
  /** Input channels. */
  C: number;
  /** Input height. */
  H: number;
  /** Input width. */
  W: number;
  /** Output channels. */
  O: number;
  /** Kernel height. */
  KH: number;
  /** Kernel width. */
  KW: number;
  /** Output height. */
  OH: number;
  /** Output width. */
  OW: number;
  /** Stride (both axes). */
  stride: number;
  /** Zero padding (every side). */
  pad: number;
}

/** Checks shapes and derives the output size; throws ShapeError naming `conv2d` and both shapes. */
export function convGeometry(x: Tensor, w: Tensor, stride: number, pad: number): ConvGeometry {
  const op = "conv2d";
  const shapes = `x ${fmtShape(x.shape)}, w ${fmtShape(w.shape)} (stride ${stride}, padding ${pad})`;
  if (x.rank !== 4 || w.rank !== 4) throw new ShapeError(op, `expects 4-D NCHW x and OIHW w, got ${shapes}`);
  if (x.dtype !== "f32" || w.dtype !== "f32") throw new ShapeError(op, `needs f32 tensors: ${shapes}`);
  if (!Number.isInteger(stride) || stride < 1 || !Number.isInteger(pad) || pad < 0) {
    throw new ShapeError(op, `stride must be a positive and padding a non-negative integer: ${shapes}`);
  }
  const [N, C, H, W] = x.shape;
  const [O, C2, KH, KW] = w.shape;
  if (C !== C2) throw new ShapeError(op, `input channels differ (${C} vs ${C2}): ${shapes}`);
  const OH = Math.floor((H + 2 * pad - KH) / stride) + 1;
  const OW = Math.floor((W + 2 * pad - KW) / stride) + 1;
  if (OH < 1 || OW < 1 || KH < 1 || KW < 1) {
    throw new ShapeError(op, `kernel larger than padded input: ${shapes}`);
  }
  if (N * Math.max(O, C) * Math.max(OH * OW, H * W) >= 2 ** 31) {
    throw new ShapeError(op, `too large: ${shapes}`);
  }
  return { N, C, H, W, O, KH, KW, OH, OW, stride, pad };
}

/** WGSL lines setting `c, kh, kw` from the im2col row index `k` (k = (c·KH + kh)·KW + kw). */
function splitTap(g: ConvGeometry, k: string): string {
  const KK = g.KH * g.KW;
  if (KK === 1) return `let c = ${k}; let kh = 0; let kw = 0;`;
  return `let c = ${k} / ${KK}u; let r = ${k} % ${KK}u; let kh = i32(r / ${g.KW}u); let kw = i32(r % ${g.KW}u);`;
}

/** WGSL lines setting `n, oh, ow` from an output-pixel column index `p` (p = (n·OH + oh)·OW + ow). */
function splitPixel(g: ConvGeometry, p: string): string {
  const OHW = g.OH * g.OW;
  return `let n = ${p} / ${OHW}u; let q = ${p} % ${OHW}u; let oh = i32(q / ${g.OW}u); let ow = i32(q % ${g.OW}u);`;
}

/** WGSL: x at (n, c, ih, iw) or 0 outside the image (ih/iw are i32 expressions). */
function xAt(ih: string, iw: string): string {
  return `xAt(n, c, ${ih}, ${iw})`;
}

function xAtDecl(g: ConvGeometry, vec = false): string {
  if (g.pad === 0) {
    // Without padding every tap of a valid output pixel lies inside the image: no bounds checks.
    return `fn xAt(n: u32, c: u32, ih: i32, iw: i32) -> f32 {
  let i = ((n * ${g.C}u + c) * ${g.H}u + u32(ih)) * ${g.W}u + u32(iw);
  return x[${vec ? "i / 4u][i % 4u" : "i"}];
}`;
  }
  return `fn xAt(n: u32, c: u32, ih: i32, iw: i32) -> f32 {
  let ok = ih >= 0 && ih < ${g.H} && iw >= 0 && iw < ${g.W};
  let i = select(0u, ((n * ${g.C}u + c) * ${g.H}u + u32(ih)) * ${g.W}u + u32(iw), ok);
  return select(0.0, x[i], ok);
}`;
}

/** Forward hooks: A = w [O, C·KH·KW], B = im2col(x) [C·KH·KW, N·OH·OW], C → y (NCHW). */
function forwardHooks(g: ConvGeometry, K = g.C * g.KH * g.KW): GemmHooks {
  // K may exceed C·KH·KW (a weight zero-padded to whole vec4s, see conv2dForwardInto): B is 0 there.
  const KR = g.C * g.KH * g.KW;
  const pad = K > KR ? `if (k >= ${KR}u) { return ${"0.0"}; } ` : "";
  const pad4 = K > KR ? `if (k >= ${KR}u) { return vec4<f32>(0.0); } ` : "";
  const OHW = g.OH * g.OW;
  const wVec = K % 4 === 0;
  const s = g.stride;
  const yVec = OHW % 4 === 0;
  const yIndex = `(col / ${OHW}u * ${g.O}u + row) * ${OHW}u + col % ${OHW}u`;
  // A 1×1 unpadded stride-1 kernel: B is x itself, [C, pixels] per image (vec4 loads of 4 pixels).
  const plain = g.KH === 1 && g.KW === 1 && g.pad === 0 && s === 1 && OHW % 4 === 0;
  const hooks: GemmHooks = {
    decls: `@group(0) @binding(0) var<storage, read> x: array<${plain ? "vec4<f32>" : "f32"}>;
@group(0) @binding(1) var<storage, read> w: array<${wVec ? "vec4<f32>" : "f32"}>;
@group(0) @binding(2) var<storage, read_write> y: array<${yVec ? "vec4<f32>" : "f32"}>;
${xAtDecl(g, plain)}`,
    readA: wVec ? `let i = row * ${K}u + k; return w[i / 4u][i % 4u];` : `return w[row * ${K}u + k];`,
    readB: `${pad}${splitTap(g, "k")} ${splitPixel(g, "col")}
  return ${xAt(`oh * ${s} + kh - ${g.pad}`, `ow * ${s} + kw - ${g.pad}`)};`,
    writeC: yVec ? `let i = ${yIndex}; y[i / 4u][i % 4u] = v;` : `y[${yIndex}] = v;`,
  };
  // Four consecutive output columns of one image are contiguous in y when OH·OW % 4 == 0.
  if (yVec) hooks.writeC4 = `y[(${yIndex}) / 4u] = v;`;
  if (wVec) hooks.readA4 = `return w[(row * ${K}u + k) / 4u];`;
  if (plain) {
    hooks.readB4 = `return x[((col / ${OHW}u * ${g.C}u + k) * ${OHW}u + col % ${OHW}u) / 4u];`;
  } else if (g.OW % 4 === 0) {
    // Four consecutive columns share n and oh: one decomposition, four bounded loads.
    hooks.readB4 = `${pad4}${splitTap(g, "k")} ${splitPixel(g, "col")}
  let ih = oh * ${s} + kh - ${g.pad}; let iw = ow * ${s} + kw - ${g.pad};
  return vec4<f32>(${[0, 1, 2, 3].map((j) => xAt("ih", `iw + ${j * s}`)).join(", ")});`;
  }
  return hooks;
}

/**
 * Layout of the channels-last copy of x that grad weight and the channels-last forward read, and the
 * stride of the GEMM over it: copy pixel (i, j) holds x at (i·step − pad, j·step − pad). A 1×1
 * unpadded convolution reads only every stride-th pixel, so its copy keeps just those (step = stride,
 * GEMM stride 1); otherwise step = 1 and the copy is x with its zero padding.
 */
function inputLayout(g: ConvGeometry): { layout: ChannelsLastLayout; s: number } {
  const Cq = vec4Channels(g.C);
  if (g.KH === 1 && g.KW === 1 && g.pad === 0) {
    return { layout: { Hq: g.OH, Wq: g.OW, Cq, step: g.stride, padH: 0, padW: 0 }, s: 1 };
  }
  const layout = { Hq: g.H + 2 * g.pad, Wq: g.W + 2 * g.pad, Cq, step: 1, padH: g.pad, padW: g.pad };
  return { layout, s: g.stride };
}

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

/** One stride phase of the grad-input GEMM: pixels ih = ph + s·i, iw = pw + s·j. */
interface Phase {
  ph: number;
  pw: number;
  /** Rows / columns of pixels in this phase. */
  hp: number;
  wp: number;
  /** First tap and number of taps per axis reaching this phase. */
  kh0: number;
  kw0: number;
  nkh: number;
  nkw: number;
}

function phases(g: ConvGeometry): Phase[] {
  const s = g.stride;
  const out: Phase[] = [];
  for (let ph = 0; ph < s; ph++) {
    for (let pw = 0; pw < s; pw++) {
      const hp = Math.ceil((g.H - ph) / s);
      const wp = Math.ceil((g.W - pw) / s);
      if (hp <= 0 || wp <= 0) continue;
      const kh0 = (ph + g.pad) % s;
      const kw0 = (pw + g.pad) % s;
      out.push({
        ph,
        pw,
        hp,
        wp,
        kh0,
        kw0,
        nkh: Math.max(0, Math.ceil((g.KH - kh0) / s)),
        nkw: Math.max(0, Math.ceil((g.KW - kw0) / s)),
      });
    }
  }
  return out;
}

/**
 * Grad-input hooks of one phase: A[c, k] = wp[c, o, t] (the phase's weight, see `phaseWeights`) with
 * k = o·taps + t and tap t = th·nkw + tw ↔ (kh, kw) = (kh0 + s·th, kw0 + s·tw);
 * B[k, (n,i,j)] = dy[n, o, i + dh0 − th, j + dw0 − tw] (0 outside); C → dx. The contraction runs
 * channel-major like the forward im2col: consecutive k are neighbouring taps of one dy plane.
 */
function gradInputHooks(g: ConvGeometry, f: Phase, wOffset: number, zeroPhases: Phase[] = []): GemmHooks {
  const s = g.stride;
  const { O, C, OH, OW, H, W } = g;
  const dh0 = (f.ph + g.pad - f.kh0) / s;
  const dw0 = (f.pw + g.pad - f.kw0) / s;
  const P = f.hp * f.wp;
  const nt = f.nkh * f.nkw;
  const K = O * nt;
  const splitK = nt === 1
    ? `let o = k; let th = 0; let tw = 0;`
    : `let o = k / ${nt}u; let t = k % ${nt}u; let th = i32(t / ${f.nkw}u); let tw = i32(t % ${f.nkw}u);`;
  const splitCol =
    `let n = col / ${P}u; let q = col % ${P}u; let i = i32(q / ${f.wp}u); let j = i32(q % ${f.wp}u);`;
  // Rows of A are contiguous (K floats from wOffset + row·K): vec4 loads when both are multiples of 4.
  const wVec = K % 4 === 0 && wOffset % 4 === 0;
  const dxIndex = `((n * ${C}u + row) * ${H}u + u32(${f.ph} + ${s} * i)) * ${W}u + u32(${f.pw} + ${s} * j)`;
  // At stride 1 four consecutive columns of a row are four contiguous, aligned dx pixels (W % 4 == 0).
  const dxVec = s === 1 && W % 4 === 0 && zeroPhases.length === 0;
  // One tap reading dy at the phase's own pixel (a 1×1 unpadded convolution): B is dy itself, each
  // image's plane of P pixels contiguous, so four columns are one aligned vec4 and need no bounds.
  const dyPlain = nt === 1 && dh0 === 0 && dw0 === 0 && f.hp === OH && f.wp === OW && P % 4 === 0;
  // The 1×1 stride-2 grad input that also zeroes the other three phases: four neighbouring outputs of
  // phase (0, 0) fill two aligned vec4s of an even row (x and z lanes) and, zero, two of the odd row.
  const spread = dyPlain && s === 2 && f.ph === 0 && f.pw === 0 && zeroPhases.length === 3 && H === 2 * OH &&
    W === 2 * OW && OW % 4 === 0;
  const hooks: GemmHooks = {
    decls: `@group(0) @binding(0) var<storage, read> dy: array<${dyPlain ? "vec4<f32>" : "f32"}>;
@group(0) @binding(1) var<storage, read> w: array<${wVec ? "vec4<f32>" : "f32"}>;
@group(0) @binding(2) var<storage, read_write> dx: array<${dxVec || spread ? "vec4<f32>" : "f32"}>;
fn dyAt(n: u32, o: u32, oh: i32, ow: i32) -> f32 {
  let ok = oh >= 0 && oh < ${OH} && ow >= 0 && ow < ${OW};
  let i = select(0u, ((n * ${O}u + o) * ${OH}u + u32(oh)) * ${OW}u + u32(ow), ok);
  return select(0.0, dy[${dyPlain ? "i / 4u][i % 4u" : "i"}], ok);
}`,
    readA: wVec
      ? `let i = ${wOffset}u + row * ${K}u + k; return w[i / 4u][i % 4u];`
      : `return w[${wOffset}u + row * ${K}u + k];`,
    readB: `${splitK} ${splitCol} return dyAt(n, o, i + ${dh0} - th, j + ${dw0} - tw);`,
    writeC: dxVec
      ? `${splitCol} let e = ${dxIndex}; dx[e / 4u][e % 4u] = v;`
      : `${splitCol} dx[${dxIndex}] = v;` +
        // Pixels of phases no tap reaches (1×1 stride-2 shortcuts) are zeroed here, not by extra dispatches:
        // pixel (ph' + s·i, pw' + s·j) of such a phase lies next to pixel (s·i, s·j) of phase (0, 0).
        zeroPhases.map((z) => {
          const ih = `${z.ph} + ${s} * i`;
          const iw = `${z.pw} + ${s} * j`;
          return `\n  if (${ih} < ${H} && ${iw} < ${W}) { dx[((n * ${C}u + row) * ${H}u + u32(${ih})) * ${W}u + u32(${iw})] = 0.0; }`;
        }).join(""),
  };
  if (wVec) hooks.readA4 = `return w[(${wOffset}u + row * ${K}u + k) / 4u];`;
  if (dxVec) hooks.writeC4 = `${splitCol} dx[(${dxIndex}) / 4u] = v;`;
  if (spread) {
    const zero = (e: string) => `dx[(${e}) / 4u][(${e}) % 4u] = 0.0;`;
    hooks.writeC = `${splitCol} let e = ${dxIndex}; dx[e / 4u][e % 4u] = v; ${zero("e + 1u")} ${
      zero(`e + ${W}u`)
    } ${zero(`e + ${W + 1}u`)}`;
    hooks.writeC4 = `${splitCol} let e = (${dxIndex}) / 4u;
  dx[e] = vec4<f32>(v.x, 0.0, v.y, 0.0); dx[e + 1u] = vec4<f32>(v.z, 0.0, v.w, 0.0);
  dx[e + ${W / 4}u] = vec4<f32>(0.0); dx[e + ${W / 4 + 1}u] = vec4<f32>(0.0);`;
  }
  if (dyPlain) {
    hooks.readB4 = `return dy[((col / ${P}u * ${O}u + k) * ${P}u + col % ${P}u) / 4u];`;
  } else if (f.wp % 4 === 0) {
    hooks.readB4 = `${splitK} ${splitCol} let oh = i + ${dh0} - th; let ow = j + ${dw0} - tw;
  return vec4<f32>(dyAt(n, o, oh, ow), dyAt(n, o, oh, ow + 1), dyAt(n, o, oh, ow + 2), dyAt(n, o, oh, ow + 3));`;
  }
  return hooks;
}

/** Zero-fills the pixels of a phase no tap reaches (e.g. odd pixels of a 1×1 stride-2 convolution). */
function zeroPhaseHooks(g: ConvGeometry, f: Phase): GemmHooks {
  const P = f.hp * f.wp;
  const s = g.stride;
  return {
    decls: `@group(0) @binding(0) var<storage, read_write> dx: array<f32>;`,
    readA: "return 0.0;",
    readB: "return 0.0;",
    writeC: `let n = col / ${P}u; let q = col % ${P}u; let i = q / ${f.wp}u; let j = q % ${f.wp}u;
  dx[((n * ${g.C}u + row) * ${g.H}u + ${f.ph}u + ${s}u * i) * ${g.W}u + ${f.pw}u + ${s}u * j] = v;`,
  };
}

/** The layer shape in dispatch names (profiles group kernels by it), e.g. `64→128 3×3 s2 32×32`. */
function label(g: ConvGeometry): string {
  return `${g.C}→${g.O} ${g.KH}×${g.KW} s${g.stride} ${g.H}×${g.W}`;
}

/**
 * The weight [O, C, KH, KW] re-laid out as [O, KH·KW, Cq] (Cq = C rounded up to 4; padding channels
 * zero): the A operand of the channels-last forward, contraction-major (vec4 loads).
 */
function weightTapChannelOut(w: Tensor, g: ConvGeometry): Tensor {
  const KK = g.KH * g.KW;
  const Cq = vec4Channels(g.C);
  const wr = empty([g.O, KK, Cq]);
  const n = g.O * Cq;
  const stores = Array.from(
    { length: KK },
    (_, t) =>
      `  if (real) { v = w[(o * ${g.C}u + c) * ${KK}u + ${t}u]; } wr[(o * ${KK}u + ${t}u) * ${Cq}u + c] = v;`,
  );
  const code = `@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read_write> wr: array<f32>;
${flatMain(n, 64)}
  let c = i % ${Cq}u; let o = i / ${Cq}u;
  let real = c < ${g.C}u;
  var v = 0.0;
${stores.join("\n")}
}`;
  const name = `conv2d.weightOutTapChannel ${label(g)}`;
  gpu().dispatch({ name, code }, [w.range, wr.range], grid1d(n, 64));
  return wr;
}

/**
 * Whether the channels-last GEMM (see `conv_channels_last.ts`) is used for a pass whose input has
 * `inChannels` channels: on the register tiling (software adapters, where it was measured) for spatial
 * kernels whose input channels fill whole vec4s. Measured on ResNet-18's layers at batch 8 (GFLOP/s per
 * 2 cores, NCHW → channels-last): forward 24–26 → 27–31, grad input 22–25 → 25–28 for every 3×3 layer;
 * the 3-channel stem forward 19.7 → 16.6 (a quarter of its contraction would be padding) stays NCHW,
 * and 1×1 kernels gain nothing.
 */
function channelsLastPays(g: ConvGeometry, inChannels: number): boolean {
  return !gemmTiling().useWorkgroupMemory && g.KH * g.KW > 1 && inChannels % 4 === 0;
}

/** Records the forward GEMM into `y` [N, O, OH, OW]. */
export function conv2dForwardInto(y: Tensor, x: Tensor, w: Tensor, g: ConvGeometry): void {
  if (channelsLastPays(g, g.C)) {
    const wr = weightTapChannelOut(w, g);
    const { layout, s } = inputLayout(g);
    const spec: ChannelsLastGemm = {
      rowsH: g.OH,
      rowsW: g.OW,
      layout,
      ah: 0,
      aw: 0,
      sIn: s,
      dir: 1,
      nth: g.KH,
      ntw: g.KW,
      channels: g.O,
      weightOffset: 0,
      outIndex: `(n * ${g.O}u + ch) * ${g.OH * g.OW}u + i * ${g.OW}u + j`,
      vecOut: g.OW % 4 === 0,
    };
    channelsLastGemmsInto(`conv2d.forwardChannelsLast ${label(g)}`, y, x, wr, [spec]);
    wr.dispose();
    return;
  }
  if (g.KH === 1 && g.KW === 1 && g.pad === 0 && g.stride > 1 && (g.OH * g.OW) % 4 === 0) {
    // A strided 1×1 convolution reads every stride-th pixel: gather those once (a copy of N·C·OH·OW
    // floats against 2·O FLOPs per element), then a plain GEMM with aligned vec4 loads of pixels.
    const sub = subsample(x, g);
    const g1: ConvGeometry = { ...g, H: g.OH, W: g.OW, stride: 1 };
    const sizes = { M: g.O, N: g.N * g.OH * g.OW, K: g.C, batch: 1 };
    dispatchGemm(`conv2d.forward ${label(g)}`, sizes, forwardHooks(g1), [sub, w, y]);
    sub.dispose();
    return;
  }
  const K = g.C * g.KH * g.KW;
  if (K <= UNROLL_K && K % 4 !== 0) {
    // A short contraction (the 3-channel stem, K = 27) is unrolled, so padding the weight with zeros to
    // whole vec4s costs a few products and makes every weight load one vec4 (B's padding taps fold to 0).
    const Kp = Math.ceil(K / 4) * 4;
    const wp = zeroPadRows(w, g.O, K, Kp);
    const sizes = { M: g.O, N: g.N * g.OH * g.OW, K: Kp, batch: 1 };
    dispatchGemm(`conv2d.forward ${label(g)}`, sizes, forwardHooks(g, Kp), [x, wp, y]);
    wp.dispose();
    return;
  }
  const sizes = { M: g.O, N: g.N * g.OH * g.OW, K, batch: 1 };
  dispatchGemm(`conv2d.forward ${label(g)}`, sizes, forwardHooks(g), [x, w, y]);
}

/** A [rows, cols] row-major tensor copied to [rows, padded] with zeros in the extra columns. */
function zeroPadRows(w: Tensor, rows: number, cols: number, padded: number): Tensor {
  const out = empty([rows, padded]);
  const code = `@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${flatMain(rows * padded, 64)}
  let r = i / ${padded}u; let c = i % ${padded}u;
  out[i] = select(0.0, w[r * ${cols}u + min(c, ${cols - 1}u)], c < ${cols}u);
}`;
  gpu().dispatch({ name: "conv2d.zeroPadWeight", code }, [w.range, out.range], grid1d(rows * padded, 64));
  return out;
}

/** x [N, C, H, W] → its pixels (stride·i, stride·j) as [N, C, OH, OW] (for strided 1×1 convolutions). */
function subsample(x: Tensor, g: ConvGeometry): Tensor {
  const n = g.N * g.C * g.OH * g.OW;
  const sub = empty([g.N, g.C, g.OH, g.OW]);
  const name = `conv2d.subsample ${label(g)}`;
  if (g.stride === 2 && g.OW % 4 === 0 && g.W % 4 === 0) {
    // Four outputs per invocation from two aligned vec4s of the input row (components x and z).
    const code = `@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> sub: array<vec4<f32>>;
${flatMain(n / 4, 64)}
  let j = (i % ${g.OW / 4}u) * 4u; let r = i / ${g.OW / 4}u; let h = r % ${g.OH}u; let nc = r / ${g.OH}u;
  let e = ((nc * ${g.H}u + h * 2u) * ${g.W}u + j * 2u) / 4u;
  let lo = x[e]; let hi = x[e + 1u];
  sub[i] = vec4<f32>(lo.x, lo.z, hi.x, hi.z);
}`;
    gpu().dispatch({ name, code }, [x.range, sub.range], grid1d(n / 4, 64));
    return sub;
  }
  const code = `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> sub: array<f32>;
${flatMain(n, 64)}
  let j = i % ${g.OW}u; let r = i / ${g.OW}u; let h = r % ${g.OH}u; let nc = r / ${g.OH}u;
  sub[i] = x[(nc * ${g.H}u + h * ${g.stride}u) * ${g.W}u + j * ${g.stride}u];
}`;
  gpu().dispatch({ name, code }, [x.range, sub.range], grid1d(n, 64));
  return sub;
}

/**
 * The weight [O, C, KH, KW] re-laid out per stride phase, the phases one after another from the offsets
 * returned, each phase's taps in (th, tw) order with tap (th, tw) ↔ (kh0 + s·th, kw0 + s·tw):
 * - `"C,O,taps"` (the NCHW grad input's A operand: row c contiguous, vec4 loads);
 * - `"C,taps,Oq"` (the channels-last grad input's A operand; Oq = O rounded up to 4, padding zero).
 * One invocation per (o, c) reads its KH·KW taps once.
 */
function phaseWeights(
  w: Tensor,
  g: ConvGeometry,
  fs: Phase[],
  layout: "C,O,taps" | "C,taps,Oq",
): { wp: Tensor; offsets: number[] } {
  const Oq = layout === "C,taps,Oq" ? vec4Channels(g.O) : g.O;
  const offsets: number[] = [];
  let total = 0;
  for (const f of fs) {
    offsets.push(total);
    total += f.nkh * f.nkw * Oq * g.C;
  }
  const wp = empty([total]);
  const lines: string[] = [];
  fs.forEach((f, p) => {
    const nt = f.nkh * f.nkw;
    for (let th = 0; th < f.nkh; th++) {
      for (let tw = 0; tw < f.nkw; tw++) {
        const tap = (f.kh0 + g.stride * th) * g.KW + f.kw0 + g.stride * tw;
        const t = th * f.nkw + tw;
        const dst = layout === "C,O,taps"
          ? `(c * ${g.O}u + o) * ${nt}u + ${t}u`
          : `(c * ${nt}u + ${t}u) * ${Oq}u + o`;
        lines.push(`  if (real) { v = w[base + ${tap}u]; } wp[${offsets[p]}u + ${dst}] = v;`);
      }
    }
  });
  const n = Oq * g.C;
  const code = `@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read_write> wp: array<f32>;
${flatMain(n, 64)}
  let o = i % ${Oq}u; let c = i / ${Oq}u;
  let real = o < ${g.O}u;
  let base = select(0u, (o * ${g.C}u + c) * ${g.KH * g.KW}u, real);
  var v = 0.0;
${lines.join("\n")}
}`;
  const name = `conv2d.phaseWeights ${layout} ${label(g)}`;
  gpu().dispatch({ name, code }, [w.range, wp.range], grid1d(n, 64));
  return { wp, offsets };
}

/**
 * Grad input as channels-last GEMMs, one per stride phase, over one zero-padded channels-last copy of
 * dy (padded by the kernel size on every side, enough for every phase's taps): phase pixel (i, j) and
 * tap (th, tw) read dy at (i + dh0 − th, j + dw0 − tw). Phase (0, 0) also zeroes the tapless phases.
 */
function gradInputChannelsLastInto(dx: Tensor, dy: Tensor, w: Tensor, g: ConvGeometry, fs: Phase[]): void {
  const s = g.stride;
  const live = fs.filter((f) => f.nkh * f.nkw > 0);
  const zeros = fs.filter((f) => f.nkh * f.nkw === 0);
  const { wp, offsets } = phaseWeights(w, g, live, "C,taps,Oq");
  const layout: ChannelsLastLayout = {
    Hq: g.OH + 2 * g.KH,
    Wq: g.OW + 2 * g.KW,
    Cq: vec4Channels(g.O),
    step: 1,
    padH: g.KH,
    padW: g.KW,
  };
  const dxIndex = (ph: number, pw: number) =>
    `((n * ${g.C}u + ch) * ${g.H}u + ${ph}u + ${s}u * i) * ${g.W}u + ${pw}u + ${s}u * j`;
  const specs = live.map((f, p): ChannelsLastGemm => ({
    rowsH: f.hp,
    rowsW: f.wp,
    layout,
    ah: g.KH + (f.ph + g.pad - f.kh0) / s,
    aw: g.KW + (f.pw + g.pad - f.kw0) / s,
    sIn: 1,
    dir: -1,
    nth: f.nkh,
    ntw: f.nkw,
    channels: g.C,
    weightOffset: offsets[p],
    outIndex: dxIndex(f.ph, f.pw),
    vecOut: s === 1 && g.W % 4 === 0,
    extraWrite: p > 0
      ? ""
      : zeros.map((z) =>
        `\n  if (${z.ph}u + ${s}u * i < ${g.H}u && ${z.pw}u + ${s}u * j < ${g.W}u) { out[${
          dxIndex(z.ph, z.pw)
        }] = 0.0; }`
      ).join(""),
  }));
  channelsLastGemmsInto(`conv2d.gradInputChannelsLast ${label(g)}`, dx, dy, wp, specs);
  wp.dispose();
}

/** Records the grad-input GEMMs (one per stride phase) into `dx` [N, C, H, W]. */
export function conv2dGradInputInto(dx: Tensor, dy: Tensor, w: Tensor, g: ConvGeometry): void {
  const fs = phases(g);
  const first = fs[0];
  // Channels-last phases where they pay (phase (0, 0) has the most pixels and zeroes tapless phases).
  if (first.nkh * first.nkw > 0 && channelsLastPays(g, g.O)) {
    gradInputChannelsLastInto(dx, dy, w, g, fs);
    return;
  }
  const live = fs.filter((f) => f.nkh * f.nkw > 0);
  const { wp, offsets } = live.length ? phaseWeights(w, g, live, "C,O,taps") : { wp: null, offsets: [] };
  // Phase (0, 0) has the most pixels; when it has taps it also zeroes the phases without any.
  const fuse = first.ph === 0 && first.pw === 0 && first.nkh * first.nkw > 0;
  const zeros = fuse ? fs.filter((f) => f.nkh * f.nkw === 0) : [];
  for (const f of fs) {
    const sizes = { M: g.C, N: g.N * f.hp * f.wp, K: g.O * f.nkh * f.nkw, batch: 1 };
    if (sizes.K === 0) {
      if (!fuse) dispatchGemm(`conv2d.gradInput.zero ${label(g)}`, sizes, zeroPhaseHooks(g, f), [dx]);
    } else {
      const hooks = gradInputHooks(g, f, offsets[live.indexOf(f)], f === first ? zeros : []);
      dispatchGemm(`conv2d.gradInput ${label(g)}`, sizes, hooks, [dy, wp!, dx]);
    }
  }
  wp?.dispose();
}

/** Records the grad-weight GEMM into `dw` [O, C, KH, KW]. */
export function conv2dGradWeightInto(dw: Tensor, x: Tensor, dy: Tensor, g: ConvGeometry): void {
  const P = g.OH * g.OW;
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

/**
 * 2-D convolution without bias: x [N, C, H, W] (NCHW), w [O, C, KH, KW] (OIHW) → [N, O, OH, OW] with
 * OH = ⌊(H + 2·padding − KH)/stride⌋ + 1 (likewise OW). Differentiable in x and w (implicit GEMMs).
 */
export function conv2d(x: Tensor, w: Tensor, { stride = 1, padding = 0 }: Conv2dOptions = {}): Tensor {
  const g = convGeometry(x, w, stride, padding);
  const y = empty([g.N, g.O, g.OH, g.OW]);
  if (y.size === 0) return y;
  conv2dForwardInto(y, x, w, g);
  return record("conv2d", [x, w], y, (dy) => {
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    if (x.requiresGrad) {
      dx = empty(x.shape);
      conv2dGradInputInto(dx, dy, w, g);
    }
    if (w.requiresGrad) {
      dw = gradTarget(w);
      conv2dGradWeightInto(dw, x, dy, g);
    }
    return [dx, dw];
  });
}
