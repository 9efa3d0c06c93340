/**
 * Convolution forward: y[o, (n,oh,ow)] = Σ_{(c,kh,kw)} w[o, (c,kh,kw)] · im2col(x)[(c,kh,kw), (n,oh,ow)].
 *
 * Three routes, by what measured fastest on the register tiling (see BENCHMARKS.md): a channels-last GEMM
 * (`conv_channels_last.ts`) for spatial kernels whose input channels fill vec4s; for strided 1×1 kernels a
 * subsample copy and a plain vec4 GEMM; otherwise an implicit NCHW GEMM (M = O, N = batch·OH·OW,
 * K = C·KH·KW; the im2col addressing and zero padding live in readB), with the weight zero-padded to whole
 * vec4s when the contraction is short (the 3-channel stem).
 *
 * @module
 */
import { read, runKernel, write } from "../program.ts";
import { empty, type Tensor } from "../tensor.ts";
import { flatMain, grid1d } from "../../shaders/common.ts";
import { type GemmHooks, UNROLL_K } from "../../shaders/gemm.ts";
import { dispatchGemm, type GemmProgram } from "./matmul.ts";
import { forwardTaps, tapTablesPay } from "./conv_taps.ts";
import { type ChannelsLastGemm, channelsLastGemmsInto, vec4Channels } from "./conv_channels_last.ts";
import {
  channelsLastPays,
  type ConvGeometry,
  inputLayout,
  label,
  splitPixel,
  splitTap,
  subsample,
  xAt,
  xAtDecl,
} from "./conv_common.ts";

/**
 * Forward hooks: A = w [O, C·KH·KW], B = im2col(x) [C·KH·KW, N·OH·OW], C → y (NCHW). On workgroup tiles
 * a spatial kernel's B splits k through the geometry's tap table (`conv_taps.ts`) instead of dividing.
 */
function forwardHooks(
  g: ConvGeometry,
  t: { x: Tensor; w: Tensor; y: Tensor },
  K = g.C * g.KH * g.KW,
): GemmProgram {
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
    decls: xAtDecl(g, plain),
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
  const vec = (v: boolean) => v ? "array<vec4<f32>>" : "array<f32>";
  const bindings = [read("x", t.x, vec(plain)), read("w", t.w, vec(wVec)), write("y", t.y, vec(yVec))];
  if (tapTablesPay(g)) {
    // x's flat index of tap k at pixel (ih0, iw0) = base + tap[k].x; the padding test reads (kh, kw).
    const check = g.pad > 0;
    hooks.decls = `fn xTap(n: u32, t: vec2<i32>, ih0: i32, iw0: i32) -> f32 {
  let i = i32(n * ${g.C * g.H * g.W}u) + t.x + ih0 * ${g.W} + iw0;${
      check
        ? `
  let ih = ih0 + (t.y >> 16u); let iw = iw0 + (t.y & 0xffff);
  let ok = (ih >= 0) & (ih < ${g.H}) & (iw >= 0) & (iw < ${g.W});
  return select(0.0, x[select(0, i, ok)], ok);`
        : `
  return x[i];`
    }
}`;
    const pixel = `${splitPixel(g, "col")} let ih0 = oh * ${s} - ${g.pad}; let iw0 = ow * ${s} - ${g.pad};`;
    hooks.readB = `${pad}let t = tap[k]; ${pixel} return xTap(n, t, ih0, iw0);`;
    if (g.OW % 4 === 0) {
      hooks.readB4 = `${pad4}let t = tap[k]; ${pixel}
  return vec4<f32>(${[0, 1, 2, 3].map((j) => `xTap(n, t, ih0, iw0 + ${j * s})`).join(", ")});`;
    }
    bindings.push(forwardTaps(g));
  }
  return { hooks, bindings };
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
  const body = `${flatMain(n, 64)}
  let c = i % ${Cq}u; let o = i / ${Cq}u;
  let real = c < ${g.C}u;
  var v = 0.0;
${stores.join("\n")}
}`;
  const name = `conv2d.weightOutTapChannel ${label(g)}`;
  runKernel({ name, bindings: [read("w", w), write("wr", wr)], body, workgroups: grid1d(n, 64) });
  return wr;
}

/** Records the forward GEMM into `y` [N, O, OH, OW]. */
export function conv2dForwardInto(y: Tensor, x: Tensor, w: Tensor, g: ConvGeometry): void {
  if (channelsLastPays(g, g.C, "forward", conv2dForwardInto)) {
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
    dispatchGemm(`conv2d.forward ${label(g)}`, sizes, forwardHooks(g1, { x: sub, w, y }));
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
    dispatchGemm(`conv2d.forward ${label(g)}`, sizes, forwardHooks(g, { x, w: wp, y }, Kp));
    wp.dispose();
    return;
  }
  const sizes = { M: g.O, N: g.N * g.OH * g.OW, K, batch: 1 };
  dispatchGemm(`conv2d.forward ${label(g)}`, sizes, forwardHooks(g, { x, w, y }));
}

/** A [rows, cols] row-major tensor copied to [rows, padded] with zeros in the extra columns. */
function zeroPadRows(w: Tensor, rows: number, cols: number, padded: number): Tensor {
  const out = empty([rows, padded]);
  const body = `${flatMain(rows * padded, 64)}
  let r = i / ${padded}u; let c = i % ${padded}u;
  out[i] = select(0.0, w[r * ${cols}u + min(c, ${cols - 1}u)], c < ${cols}u);
}`;
  runKernel({
    name: "conv2d.zeroPadWeight",
    bindings: [read("w", w), write("out", out)],
    body,
    workgroups: grid1d(rows * padded, 64),
  });
  return out;
}
