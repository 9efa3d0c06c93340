/**
 * Precomputed im2col indices for the convolution GEMMs of the workgroup-tile ("gpu") routes: a small table
 * per geometry maps the contraction index k to its tap (forward, grad input) or pixel (grad weight), so the
 * hooks split k with one load instead of an integer division and three remainders per element (the
 * column's part is split once per column, which a GPU compiler hoists out of the K loop: it does not change
 * with k).
 *
 * Each entry is a `vec2<i32>`: `.x` the tap's offset in the operand's flat index, relative to the
 * column's base (forward: c·H·W + kh·W + kw; grad input: o·OH·OW − th·OW − tw), `.y` the tap's row and
 * column packed as (kh << 16) | kw, for the bounds checks of the zero padding. Tables are uploaded once per
 * geometry and device into storage buffers the engine keeps (a few KiB each: K entries, K = C·KH·KW or
 * O·taps; grad weight's one entry per pixel of an image chunk, 8 bytes per pixel), outside the buffer pool,
 * so they never count as a live tensor.
 *
 * @module
 */
import { gpu } from "../gpu.ts";
import { read } from "../program.ts";
import type { KernelBinding } from "../program.ts";
import { gemmTiling } from "./matmul.ts";
import type { ConvGeometry } from "./conv_common.ts";

const tables = new WeakMap<GPUDevice, Map<string, GPUBuffer>>();

/** At most this many tables per device (ResNet-18 needs about 20); past it the oldest is dropped. */
const MAX_TABLES = 256;

/**
 * Whether the convolution GEMMs of `g` take the tap tables: on workgroup tiles (the "gpu" strategy's
 * routes; the register routes of software adapters are unchanged) for kernels with more than one tap.
 */
export function tapTablesPay(g: ConvGeometry): boolean {
  return gemmTiling().useWorkgroupMemory && g.KH * g.KW > 1;
}

/** The device's table `key` (built by `entries` on first use) as a read-only `array<vec2<i32>>` binding. */
function table(name: string, key: string, entries: () => Int32Array): KernelBinding {
  const device = gpu().device;
  let byKey = tables.get(device);
  if (!byKey) tables.set(device, byKey = new Map());
  let buffer = byKey.get(key);
  if (buffer) {
    // Most recently used last: a full map drops its first.
    byKey.delete(key);
  } else {
    if (byKey.size >= MAX_TABLES) {
      gpu().flush(); // recorded work may still read the table dropped
      const [oldest, old] = byKey.entries().next().value!;
      byKey.delete(oldest);
      old.destroy();
    }
    const data = entries();
    buffer = device.createBuffer({
      size: Math.max(16, data.byteLength),
      usage: GPUBufferUsage.STORAGE,
      mappedAtCreation: true,
    });
    new Int32Array(buffer.getMappedRange()).set(data);
    buffer.unmap();
  }
  byKey.set(key, buffer);
  return read(name, buffer, "array<vec2<i32>>");
}

/** Packs a tap's row and column (each < 2^15) for the `.y` of an entry. */
const pack = (r: number, c: number) => (r << 16) | c;

/**
 * The forward's table over k = (c·KH + kh)·KW + kw < C·KH·KW: `.x` = c·H·W + kh·W + kw (x's flat index of
 * the tap at pixel (ih0, iw0) of image n is n·C·H·W + `.x` + ih0·W + iw0), `.y` = (kh, kw).
 */
export function forwardTaps(g: ConvGeometry): KernelBinding {
  const K = g.C * g.KH * g.KW;
  return table("tap", `forward ${g.C} ${g.H} ${g.W} ${g.KH} ${g.KW}`, () => {
    const out = new Int32Array(2 * K);
    for (let k = 0; k < K; k++) {
      const c = Math.floor(k / (g.KH * g.KW));
      const r = k % (g.KH * g.KW);
      const kh = Math.floor(r / g.KW);
      const kw = r % g.KW;
      out[2 * k] = c * g.H * g.W + kh * g.W + kw;
      out[2 * k + 1] = pack(kh, kw);
    }
    return out;
  });
}

/**
 * The table of one grad-input phase with `nkh`×`nkw` taps over k = o·taps + th·nkw + tw: `.x` =
 * o·OH·OW − th·OW − tw (dy's flat index at phase pixel base (oh0, ow0) of image n is n·O·OH·OW + `.x` +
 * oh0·OW + ow0), `.y` = (th, tw).
 */
export function gradInputTaps(g: ConvGeometry, nkh: number, nkw: number): KernelBinding {
  const nt = nkh * nkw;
  const K = g.O * nt;
  return table("tap", `gradInput ${g.O} ${g.OH} ${g.OW} ${nkh} ${nkw}`, () => {
    const out = new Int32Array(2 * K);
    for (let k = 0; k < K; k++) {
      const o = Math.floor(k / nt);
      const t = k % nt;
      const th = Math.floor(t / nkw);
      const tw = t % nkw;
      out[2 * k] = o * g.OH * g.OW - th * g.OW - tw;
      out[2 * k + 1] = pack(th, tw);
    }
    return out;
  });
}

/**
 * The grad weight's table over the pixels kg = n·OH·OW + q of a chunk of `images` images (the contraction
 * of its channels-last GEMM): `.x` = n·O·OH·OW + q (dy's flat index of row o is `.x` + o·OH·OW), `.y` =
 * ((n·Hq + oh·s)·Wq + ow·s)·Cq (the channels-last copy's flat index of tap (kh, kw), channel c is `.y` +
 * (kh·Wq + kw)·Cq + c).
 */
export function gradWeightPixels(
  g: ConvGeometry,
  images: number,
  q: { Hq: number; Wq: number; Cq: number; s: number },
): KernelBinding {
  const OHW = g.OH * g.OW;
  const key = `gradWeight ${images} ${g.O} ${g.OH} ${g.OW} ${q.Hq} ${q.Wq} ${q.Cq} ${q.s}`;
  return table("pix", key, () => {
    const out = new Int32Array(2 * images * OHW);
    for (let kg = 0; kg < images * OHW; kg++) {
      const n = Math.floor(kg / OHW);
      const p = kg % OHW;
      const oh = Math.floor(p / g.OW);
      const ow = p % g.OW;
      out[2 * kg] = n * g.O * OHW + p;
      out[2 * kg + 1] = ((n * q.Hq + oh * q.s) * q.Wq + ow * q.s) * q.Cq;
    }
    return out;
  });
}
