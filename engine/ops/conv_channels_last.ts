/**
 * Channels-last implicit GEMMs for convolutions (used by `conv.ts` where they measure faster).
 *
 * On a software adapter the cost of a register-blocked GEMM is its loads: a vec4 load of four
 * contiguous, aligned floats costs about what one scalar gather does. NCHW im2col operands give scalar
 * loads (neighbouring taps are misaligned, channels are a plane apart); a zero-padded channels-last copy
 * [N, Hq, Wq, Cq] of the input (Cq = channels rounded up to 4) makes four channels of one tap one aligned
 * vec4 and needs no bounds checks. The copy is transient; for a large batch it is made in chunks of
 * images so that it never stands beside a step's largest tensors at the memory peak.
 *
 * One GEMM shape serves the forward convolution and each stride phase of grad input: rows = output
 * channels, columns = output pixels (n, i, j) of an rowsH × rowsW grid per image, k = (tap t, input
 * channel c) with t = th·ntw + tw. A = a weight re-laid as [channels, taps, Cq]; B[(t,c), (n,i,j)] =
 * q[n, ah + sIn·i + dir·th, aw + sIn·j + dir·tw, c] from the copy q. Both operands are contraction-major,
 * so the template's dot-product kernel (`readBT4`) loads one vec4 per four products on either side, and
 * four neighbouring output pixels are stored as one vec4 where they are contiguous.
 */
import { read, runKernel, write } from "../program.ts";
import { empty, Tensor } from "../tensor.ts";
import { flatMain, grid1d } from "../../shaders/common.ts";
import type { GemmHooks } from "../../shaders/gemm.ts";
import { dispatchGemm } from "./matmul.ts";

/** Rounds a channel count up to a multiple of 4 (whole vec4s). */
export function vec4Channels(c: number): number {
  return Math.ceil(c / 4) * 4;
}

/** Layout of a channels-last copy [N, Hq, Wq, Cq] of an NCHW tensor [N, C, H, W]. */
export interface ChannelsLastLayout {
  /** Rows, columns and channels (C rounded up to 4) of the copy. */
  Hq: number;
  Wq: number;
  Cq: number;
  /** Copy pixel (i, j) holds source pixel (i·step − pad, j·step − pad) (zero outside the source). */
  step: number;
  padH: number;
  padW: number;
}

/**
 * An NCHW tensor x → its channels-last copy in `layout` (extra channels and out-of-range pixels zero).
 * One invocation writes one vec4 of four channels.
 */
export function channelsLastCopy(x: Tensor, layout: ChannelsLastLayout, name: string): Tensor {
  const [N, C, H, W] = x.shape;
  const { Hq, Wq, Cq, step, padH, padW } = layout;
  const C4 = Cq / 4;
  const HW = H * W;
  const n = N * Hq * Wq * C4;
  const q = empty([N, Hq, Wq, Cq]);
  const loads = [0, 1, 2, 3].map((j) =>
    Cq === C
      ? `v[${j}] = x[base + ${j * HW}u];`
      : `if (c + ${j}u < ${C}u) { v[${j}] = x[base + ${j * HW}u]; }`
  ).join(" ");
  const body = `${flatMain(n, 64)}
  let c = (i % ${C4}u) * 4u; let r = i / ${C4}u;
  let iw = i32(r % ${Wq}u) * ${step} - ${padW}; let r2 = r / ${Wq}u;
  let ih = i32(r2 % ${Hq}u) * ${step} - ${padH}; let nn = r2 / ${Hq}u;
  var v = vec4<f32>(0.0);
  if (ih >= 0 && ih < ${H} && iw >= 0 && iw < ${W}) {
    let base = (nn * ${C}u + c) * ${HW}u + u32(ih) * ${W}u + u32(iw);
    ${loads}
  }
  q[i] = v;
}`;
  runKernel({
    name: `${name}.channelsLast`,
    bindings: [read("x", x), write("q", q, "array<vec4<f32>>")],
    body,
    workgroups: grid1d(n, 64),
  });
  return q;
}

/** Default bytes of a channels-last copy above which a pass works through the batch in chunks. */
export const CHANNELS_LAST_CHUNK_BYTES = 4 * 2 ** 20;
let chunkBytes = CHANNELS_LAST_CHUNK_BYTES;

/** Sets the chunking threshold of channels-last copies (`null`: the default); for tests and benchmarks. */
export function setChannelsLastChunkBytes(bytes: number | null): void {
  chunkBytes = bytes ?? CHANNELS_LAST_CHUNK_BYTES;
}

/**
 * Images per chunk of a channels-last pass over a batch of N: all N, unless the copy
 * (`bytesPerImage` each) would exceed the chunk threshold; then the largest divisor of N whose copy
 * fits and whose image slices of every tensor in `sliced` (NCHW, batch first) start at offsets a
 * storage binding accepts (256 bytes). All N if none does.
 */
export function imagesPerChunk(N: number, bytesPerImage: number, sliced: Tensor[]): number {
  if (N * bytesPerImage <= chunkBytes) return N;
  for (let images = N - 1; images >= 1; images--) {
    if (N % images !== 0 || images * bytesPerImage > chunkBytes) continue;
    const aligned = sliced.every((t) =>
      Array.from({ length: N / images }, (_, c) => (t.elementOffset + c * images * (t.size / N)) * 4)
        .every((bytes) => bytes % 256 === 0)
    );
    if (aligned) return images;
  }
  return N;
}

/** A view of images n0 .. n0 + count − 1 of a batch-first tensor (shares its storage; dispose it). */
export function imagesOf(t: Tensor, n0: number, count: number): Tensor {
  if (n0 === 0 && count === t.shape[0]) return t.detach();
  const perImage = t.size / t.shape[0];
  return new Tensor(
    [count, ...t.shape.slice(1)],
    t.dtype,
    t.storage.retain(),
    t.elementOffset + n0 * perImage,
  );
}

/** One channels-last GEMM (see the module comment). */
export interface ChannelsLastGemm {
  /** Output pixel grid per image (GEMM columns = N · rowsH · rowsW). */
  rowsH: number;
  rowsW: number;
  /** Layout of the input copy. */
  layout: ChannelsLastLayout;
  /** Input pixel of output pixel (i, j) and tap (th, tw): (ah + sIn·i + dir·th, aw + sIn·j + dir·tw). */
  ah: number;
  aw: number;
  sIn: number;
  dir: 1 | -1;
  /** Taps per axis (K = nth · ntw · Cq). */
  nth: number;
  ntw: number;
  /** Output channels (GEMM rows). */
  channels: number;
  /** Element offset of this GEMM's weight [channels, nth·ntw, Cq] in the weight buffer. */
  weightOffset: number;
  /** WGSL index of the output element of pixel (n, i, j: u32) and output channel `ch`. */
  outIndex: string;
  /** Whether pixels (n, i, j..j+3) are four contiguous output elements (needs rowsW % 4 == 0). */
  vecOut: boolean;
  /** Extra WGSL statements at the end of writeC (may use n, i, j, ch). */
  extraWrite?: string;
}

/** The hooks of `s` and the WGSL type of its output binding `out` (after `q` and `wr`, both vec4). */
function hooks(s: ChannelsLastGemm): { hooks: GemmHooks; outType: string } {
  const { Hq, Wq, Cq } = s.layout;
  const P = s.rowsH * s.rowsW;
  const nt = s.nth * s.ntw;
  const K = nt * Cq;
  const at = (v: string, a: number, t: string) => `${a}u + ${s.sIn}u * ${v} ${s.dir > 0 ? "+" : "-"} ${t}`;
  const pixel = `let n = col / ${P}u; let p = col % ${P}u; let i = p / ${s.rowsW}u; let j = p % ${s.rowsW}u;`;
  const qIndex = `${pixel}
  let t = k / ${Cq}u; let c = k % ${Cq}u;
  let th = ${nt === 1 ? "0u" : `t / ${s.ntw}u`}; let tw = ${nt === 1 ? "0u" : `t % ${s.ntw}u`};
  let e = ((n * ${Hq}u + ${at("i", s.ah, "th")}) * ${Wq}u + ${at("j", s.aw, "tw")}) * ${Cq}u + c;`;
  const wIndex = `${s.weightOffset}u + row * ${K}u + k`;
  const vecOut = s.vecOut && s.rowsW % 4 === 0;
  const result: GemmHooks = {
    decls: "",
    readA: `let w = ${wIndex}; return wr[w / 4u][w % 4u];`,
    readA4: `return wr[(${wIndex}) / 4u];`,
    readB: `${qIndex} return q[e / 4u][e % 4u];`,
    readBT4: `${qIndex} return q[e / 4u];`,
    writeC: `${pixel} let ch = row; let o = ${s.outIndex};
  ${vecOut ? "out[o / 4u][o % 4u] = v;" : "out[o] = v;"}${s.extraWrite ?? ""}`,
  };
  if (vecOut) result.writeC4 = `${pixel} let ch = row; out[(${s.outIndex}) / 4u] = v;`;
  return { hooks: result, outType: vecOut ? "array<vec4<f32>>" : "array<f32>" };
}

/**
 * Records into `out` (NCHW, batch first) the channels-last GEMMs `specs` over `input` (NCHW, batch
 * first), which all read one copy of it (one layout), with the re-laid weights in `wr`; in chunks of
 * images (see `imagesPerChunk`), each chunk copied once for all GEMMs.
 */
export function channelsLastGemmsInto(
  name: string,
  out: Tensor,
  input: Tensor,
  wr: Tensor,
  specs: ChannelsLastGemm[],
): void {
  const N = input.shape[0];
  const { Hq, Wq, Cq } = specs[0].layout;
  const images = imagesPerChunk(N, Hq * Wq * Cq * 4, [input, out]);
  const gemms = specs.map((spec) => ({
    sizes: { M: spec.channels, N: images * spec.rowsH * spec.rowsW, K: spec.nth * spec.ntw * Cq, batch: 1 },
    ...hooks(spec),
  }));
  for (let n0 = 0; n0 < N; n0 += images) {
    const ic = imagesOf(input, n0, images);
    const oc = imagesOf(out, n0, images);
    const q = channelsLastCopy(ic, specs[0].layout, name);
    for (const { sizes, hooks, outType } of gemms) {
      const bindings = [
        read("q", q, "array<vec4<f32>>"),
        read("wr", wr, "array<vec4<f32>>"),
        write("out", oc, outType),
      ];
      dispatchGemm(name, sizes, { hooks, bindings });
    }
    for (const t of [q, ic, oc]) t.dispose();
  }
}
