/**
 * Convolution grad input: a transposed convolution gathered from dy, split into stride² phases (pixels
 * with ih ≡ ph, iw ≡ pw mod stride). In one phase only taps kh ≡ ph + pad (mod stride) reach the pixel, so
 * each phase is a dense GEMM (M = C, N = batch·pixels of the phase, K = O·taps) with no wasted products
 * even at stride 2. Where it pays, the phases are channels-last GEMMs over one padded copy of dy;
 * otherwise NCHW GEMMs with the kernel re-laid out per phase as [C, O, taps] (vec4 weight loads) and
 * bounds-checked dy reads. Pixels no tap reaches (1×1 stride-2) are zeroed by phase (0, 0).
 *
 * @module
 */
import { read, runKernel, write } from "../program.ts";
import { empty, type Tensor } from "../tensor.ts";
import { flatMain, grid1d } from "../../shaders/common.ts";
import type { GemmHooks } from "../../shaders/gemm.ts";
import { dispatchGemm, type GemmProgram } from "./matmul.ts";
import {
  type ChannelsLastGemm,
  channelsLastGemmsInto,
  type ChannelsLastLayout,
  vec4Channels,
} from "./conv_channels_last.ts";
import { channelsLastPays, type ConvGeometry, label } from "./conv_common.ts";
import { gradInputTaps, tapTablesPay } from "./conv_taps.ts";

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
function gradInputHooks(
  g: ConvGeometry,
  f: Phase,
  t: { dy: Tensor; w: Tensor; dx: Tensor; wOffset: number },
  zeroPhases: Phase[] = [],
): GemmProgram {
  const wOffset = t.wOffset;
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
  // dyAt's bounds test uses `&`, not `&&` (see xAtDecl in conv_common.ts: Tint's short-circuit branches,
  // inlined per register-block element, stall SwiftShader's compiler).
  const hooks: GemmHooks = {
    decls: `fn dyAt(n: u32, o: u32, oh: i32, ow: i32) -> f32 {
  let ok = (oh >= 0) & (oh < ${OH}) & (ow >= 0) & (ow < ${OW});
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
  const vec = (v: boolean) => v ? "array<vec4<f32>>" : "array<f32>";
  const bindings = [
    read("dy", t.dy, vec(dyPlain)),
    read("w", t.w, vec(wVec)),
    write("dx", t.dx, vec(dxVec || spread)),
  ];
  if (nt > 1 && tapTablesPay(g)) {
    // Workgroup tiles: k splits through the phase's tap table (`conv_taps.ts`), not by division. dy's flat
    // index of tap k at the phase pixel's base (oh0, ow0) = base + tap[k].x; the bounds test reads (th, tw).
    hooks.decls += `
fn dyTap(n: u32, t: vec2<i32>, oh0: i32, ow0: i32) -> f32 {
  let oh = oh0 - (t.y >> 16u); let ow = ow0 - (t.y & 0xffff);
  let ok = (oh >= 0) & (oh < ${OH}) & (ow >= 0) & (ow < ${OW});
  let i = i32(n * ${O * OH * OW}u) + t.x + oh0 * ${OW} + ow0;
  return select(0.0, dy[select(0, i, ok)], ok);
}`;
    const base = `${splitCol} let oh0 = i + ${dh0}; let ow0 = j + ${dw0};`;
    hooks.readB = `let t = tap[k]; ${base} return dyTap(n, t, oh0, ow0);`;
    if (f.wp % 4 === 0) {
      hooks.readB4 = `let t = tap[k]; ${base}
  return vec4<f32>(${[0, 1, 2, 3].map((c) => `dyTap(n, t, oh0, ow0 + ${c})`).join(", ")});`;
    }
    bindings.push(gradInputTaps(g, f.nkh, f.nkw));
  }
  return { hooks, bindings };
}

/** Zero-fills the pixels of a phase no tap reaches (e.g. odd pixels of a 1×1 stride-2 convolution). */
function zeroPhaseHooks(g: ConvGeometry, f: Phase, dx: Tensor): GemmProgram {
  const P = f.hp * f.wp;
  const s = g.stride;
  const hooks: GemmHooks = {
    decls: "",
    readA: "return 0.0;",
    readB: "return 0.0;",
    writeC: `let n = col / ${P}u; let q = col % ${P}u; let i = q / ${f.wp}u; let j = q % ${f.wp}u;
  dx[((n * ${g.C}u + row) * ${g.H}u + ${f.ph}u + ${s}u * i) * ${g.W}u + ${f.pw}u + ${s}u * j] = v;`,
  };
  return { hooks, bindings: [write("dx", dx)] };
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
  const body = `${flatMain(n, 64)}
  let o = i % ${Oq}u; let c = i / ${Oq}u;
  let real = o < ${g.O}u;
  let base = select(0u, (o * ${g.C}u + c) * ${g.KH * g.KW}u, real);
  var v = 0.0;
${lines.join("\n")}
}`;
  const name = `conv2d.phaseWeights ${layout} ${label(g)}`;
  runKernel({ name, bindings: [read("w", w), write("wp", wp)], body, workgroups: grid1d(n, 64) });
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
  if (first.nkh * first.nkw > 0 && channelsLastPays(g, g.O, "gradInput", conv2dGradInputInto)) {
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
      if (!fuse) dispatchGemm(`conv2d.gradInput.zero ${label(g)}`, sizes, zeroPhaseHooks(g, f, dx));
    } else {
      const t = { dy, w: wp!, dx, wOffset: offsets[live.indexOf(f)] };
      dispatchGemm(`conv2d.gradInput ${label(g)}`, sizes, gradInputHooks(g, f, t, f === first ? zeros : []));
    }
  }
  wp?.dispose();
}
