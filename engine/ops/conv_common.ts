/**
 * Geometry and WGSL pieces shared by the three convolution passes (`conv_forward.ts`,
 * `conv_grad_input.ts`, `conv_grad_weight.ts`): shape checks, index decompositions, the layout of the
 * channels-last input copies, when those pay, and the subsampling of strided 1×1 convolutions.
 *
 * @module
 */
import { read, runKernel, write } from "../program.ts";
import { empty, fmtShape, ShapeError, type Tensor } from "../tensor.ts";
import { flatMain, grid1d } from "../../shaders/common.ts";
import { gemmTiling } from "./matmul.ts";
import { type ConvPassInto, tunedConvRoute } from "../tune/conv_route_site.ts";
import { type ChannelsLastLayout, vec4Channels } from "./conv_channels_last.ts";

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
export function splitTap(g: ConvGeometry, k: string): string {
  const KK = g.KH * g.KW;
  if (KK === 1) return `let c = ${k}; let kh = 0; let kw = 0;`;
  return `let c = ${k} / ${KK}u; let r = ${k} % ${KK}u; let kh = i32(r / ${g.KW}u); let kw = i32(r % ${g.KW}u);`;
}

/** WGSL lines setting `n, oh, ow` from an output-pixel column index `p` (p = (n·OH + oh)·OW + ow). */
export function splitPixel(g: ConvGeometry, p: string): string {
  const OHW = g.OH * g.OW;
  return `let n = ${p} / ${OHW}u; let q = ${p} % ${OHW}u; let oh = i32(q / ${g.OW}u); let ow = i32(q % ${g.OW}u);`;
}

/** WGSL: x at (n, c, ih, iw) or 0 outside the image (ih/iw are i32 expressions). */
export function xAt(ih: string, iw: string): string {
  return `xAt(n, c, ${ih}, ${iw})`;
}

export function xAtDecl(g: ConvGeometry, vec = false): string {
  if (g.pad === 0) {
    // Without padding every tap of a valid output pixel lies inside the image: no bounds checks.
    return `fn xAt(n: u32, c: u32, ih: i32, iw: i32) -> f32 {
  let i = ((n * ${g.C}u + c) * ${g.H}u + u32(ih)) * ${g.W}u + u32(iw);
  return x[${vec ? "i / 4u][i % 4u" : "i"}];
}`;
  }
  // `&`, not `&&`: Tint compiles `&&` as short-circuit branches, and with this read inlined for every
  // element of a register block SwiftShader's compiler never finishes (Dawn's GPU process dies after
  // minutes); Naga emits a plain logical and for either. The operands have no side effects.
  return `fn xAt(n: u32, c: u32, ih: i32, iw: i32) -> f32 {
  let ok = (ih >= 0) & (ih < ${g.H}) & (iw >= 0) & (iw < ${g.W});
  let i = select(0u, ((n * ${g.C}u + c) * ${g.H}u + u32(ih)) * ${g.W}u + u32(iw), ok);
  return select(0.0, x[i], ok);
}`;
}

/** The layer shape in dispatch names (profiles group kernels by it), e.g. `64→128 3×3 s2 32×32`. */
export function label(g: ConvGeometry): string {
  return `${g.C}→${g.O} ${g.KH}×${g.KW} s${g.stride} ${g.H}×${g.W}`;
}

/**
 * Layout of the channels-last copy of x that grad weight and the channels-last forward read, and the
 * stride of the GEMM over it: copy pixel (i, j) holds x at (i·step − pad, j·step − pad). A 1×1
 * unpadded convolution reads only every stride-th pixel, so its copy keeps just those (step = stride,
 * GEMM stride 1); otherwise step = 1 and the copy is x with its zero padding.
 */
export function inputLayout(g: ConvGeometry): { layout: ChannelsLastLayout; s: number } {
  const Cq = vec4Channels(g.C);
  if (g.KH === 1 && g.KW === 1 && g.pad === 0) {
    return { layout: { Hq: g.OH, Wq: g.OW, Cq, step: g.stride, padH: 0, padW: 0 }, s: 1 };
  }
  const layout = { Hq: g.H + 2 * g.pad, Wq: g.W + 2 * g.pad, Cq, step: 1, padH: g.pad, padW: g.pad };
  return { layout, s: g.stride };
}

/**
 * Whether the channels-last GEMM (see `conv_channels_last.ts`) is used for a pass whose input has
 * `inChannels` channels: on the register tiling (software adapters, where it was measured) for spatial
 * kernels whose input channels fill whole vec4s. Measured on ResNet-18's layers at batch 8 (GFLOP/s per
 * 2 cores, NCHW → channels-last): forward 24–26 → 27–31, grad input 22–25 → 25–28 for every 3×3 layer;
 * the 3-channel stem forward 19.7 → 16.6 (a quarter of its contraction would be padding) stays NCHW,
 * and 1×1 kernels gain nothing. The autotuner may measure otherwise per geometry (`engine/tune/conv_route_site.ts`).
 */
export function channelsLastPays(
  g: ConvGeometry,
  inChannels: number,
  pass: "forward" | "gradInput",
  run: ConvPassInto<ConvGeometry>,
): boolean {
  const heuristic = !gemmTiling().useWorkgroupMemory && g.KH * g.KW > 1 && inChannels % 4 === 0;
  if (g.KH * g.KW === 1) return heuristic; // a 1×1 kernel has nothing to gain from the copy
  return tunedConvRoute(pass, g, heuristic ? "channels-last" : "im2col", run) === "channels-last";
}

/** x [N, C, H, W] → its pixels (stride·i, stride·j) as [N, C, OH, OW] (for strided 1×1 convolutions). */
export function subsample(x: Tensor, g: ConvGeometry): Tensor {
  const n = g.N * g.C * g.OH * g.OW;
  const sub = empty([g.N, g.C, g.OH, g.OW]);
  const name = `conv2d.subsample ${label(g)}`;
  if (g.stride === 2 && g.OW % 4 === 0 && g.W % 4 === 0) {
    // Four outputs per invocation from two aligned vec4s of the input row (components x and z).
    const body = `${flatMain(n / 4, 64)}
  let j = (i % ${g.OW / 4}u) * 4u; let r = i / ${g.OW / 4}u; let h = r % ${g.OH}u; let nc = r / ${g.OH}u;
  let e = ((nc * ${g.H}u + h * 2u) * ${g.W}u + j * 2u) / 4u;
  let lo = x[e]; let hi = x[e + 1u];
  sub[i] = vec4<f32>(lo.x, lo.z, hi.x, hi.z);
}`;
    const bindings = [read("x", x, "array<vec4<f32>>"), write("sub", sub, "array<vec4<f32>>")];
    runKernel({ name, bindings, body, workgroups: grid1d(n / 4, 64) });
    return sub;
  }
  const body = `${flatMain(n, 64)}
  let j = i % ${g.OW}u; let r = i / ${g.OW}u; let h = r % ${g.OH}u; let nc = r / ${g.OH}u;
  sub[i] = x[(nc * ${g.H}u + h * ${g.stride}u) * ${g.W}u + j * ${g.stride}u];
}`;
  runKernel({ name, bindings: [read("x", x), write("sub", sub)], body, workgroups: grid1d(n, 64) });
  return sub;
}
