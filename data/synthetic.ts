/**
 * A small learnable synthetic image dataset, and encoders for the CIFAR and idx binary formats
 * (used by tests to produce files; `data/files.ts` writes them to disk in Deno).
 * @module
 */

import type { Dataset } from "./dataset.ts";
import { CIFAR100_RECORD_BYTES, CIFAR10_RECORD_BYTES, CIFAR_IMAGE_BYTES } from "./cifar.ts";
import { Rng } from "./sampler.ts";

/** Options of {@link syntheticDataset}. */
export type SyntheticOptions = {
  /** Number of images. */
  n: number;
  /** Number of classes K (labels are balanced: ⌊n/K⌋ or ⌈n/K⌉ per class). */
  numClasses: number;
  /** Channels (default 3). */
  channels?: number;
  /** Height (default 32). */
  height?: number;
  /** Width (default 32). */
  width?: number;
  /** Seed (default 0). */
  seed?: number;
  /** Standard deviation of the per-pixel Gaussian noise in [0,1] scale (default 0.08). */
  noise?: number;
  /** Dataset name (default `synthetic-K<numClasses>-s<seed>`). */
  name?: string;
};

/**
 * A learnable synthetic image dataset: each class has its own base colour, a stripe
 * orientation and frequency, and a per-channel stripe sign; each image gets a random stripe
 * phase, brightness and contrast jitter and Gaussian pixel noise. Labels are balanced and
 * in a seeded random order. Deterministic given the options.
 */
export function syntheticDataset(opts: SyntheticOptions): Dataset {
  const { n, numClasses: K } = opts;
  const C = opts.channels ?? 3, H = opts.height ?? 32, W = opts.width ?? 32;
  const seed = opts.seed ?? 0, noise = opts.noise ?? 0.08;
  if (!Number.isInteger(n) || n < 0) throw new Error(`syntheticDataset: bad n ${n}`);
  if (!Number.isInteger(K) || K < 1 || K > 65536) throw new Error(`syntheticDataset: bad numClasses ${K}`);
  for (const [k, v] of [["channels", C], ["height", H], ["width", W]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`syntheticDataset: bad ${k} ${v}`);
  }
  const rng = new Rng(seed);
  const colour: number[][] = [], sign: number[][] = [];
  const cosT: number[] = [], sinT: number[] = [], freq: number[] = [];
  for (let c = 0; c < K; c++) {
    colour.push(Array.from({ length: C }, () => rng.uniform(0.25, 0.75)));
    sign.push(Array.from({ length: C }, (_, ch) => (ch === 0 || rng.uniform() < 0.5 ? 1 : -1)));
    const th = (Math.PI * c) / K + rng.uniform(-0.1, 0.1);
    cosT.push(Math.cos(th));
    sinT.push(Math.sin(th));
    freq.push(1.5 + (c % 3) + rng.uniform(0, 0.5));
  }
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = i % K;
  rng.shuffle(labels);
  const hw = H * W, sz = C * hw;
  const images = new Uint8Array(n * sz);
  const wave = new Float64Array(hw);
  for (let i = 0; i < n; i++) {
    const c = labels[i];
    const phase = rng.uniform(0, 2 * Math.PI);
    const amp = rng.uniform(0.15, 0.25);
    const bright = rng.uniform(-0.05, 0.05);
    const k = (2 * Math.PI * freq[c]) / Math.max(H, W);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) wave[y * W + x] = amp * Math.sin(k * (x * cosT[c] + y * sinT[c]) + phase);
    }
    for (let ch = 0; ch < C; ch++) {
      const base = colour[c][ch] + bright, s = sign[c][ch];
      const off = i * sz + ch * hw;
      for (let p = 0; p < hw; p++) {
        const v = base + s * wave[p] + noise * rng.normal();
        images[off + p] = Math.round(255 * Math.min(1, Math.max(0, v)));
      }
    }
  }
  return {
    name: opts.name ?? `synthetic-K${K}-s${seed}`,
    images,
    labels,
    n,
    channels: C,
    height: H,
    width: W,
    numClasses: K,
    classNames: Array.from({ length: K }, (_, c) => `class${c}`),
  };
}

function checkImages(images: Uint8Array, n: number, who: string): void {
  if (images.length !== n * CIFAR_IMAGE_BYTES) {
    throw new Error(`${who}: images has ${images.length} bytes, expected ${n} × ${CIFAR_IMAGE_BYTES}`);
  }
}

function checkByte(v: number, max: number, who: string, i: number): number {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new Error(`${who}: label ${v} at index ${i} not in 0..${max}`);
  }
  return v;
}

/** Encodes N CHW 3×32×32 images and labels (0..255 allowed, for tests) as a CIFAR-10 batch file. */
export function encodeCifar10Batch(images: Uint8Array, labels: ArrayLike<number>): Uint8Array {
  const n = labels.length;
  checkImages(images, n, "encodeCifar10Batch");
  const out = new Uint8Array(n * CIFAR10_RECORD_BYTES);
  for (let i = 0; i < n; i++) {
    const r = i * CIFAR10_RECORD_BYTES;
    out[r] = checkByte(labels[i], 255, "encodeCifar10Batch", i);
    out.set(images.subarray(i * CIFAR_IMAGE_BYTES, (i + 1) * CIFAR_IMAGE_BYTES), r + 1);
  }
  return out;
}

/** Encodes N CHW 3×32×32 images with coarse and fine labels as a CIFAR-100 binary file. */
export function encodeCifar100File(
  images: Uint8Array,
  coarse: ArrayLike<number>,
  fine: ArrayLike<number>,
): Uint8Array {
  const n = fine.length;
  if (coarse.length !== n) throw new Error(`encodeCifar100File: ${coarse.length} coarse vs ${n} fine labels`);
  checkImages(images, n, "encodeCifar100File");
  const out = new Uint8Array(n * CIFAR100_RECORD_BYTES);
  for (let i = 0; i < n; i++) {
    const r = i * CIFAR100_RECORD_BYTES;
    out[r] = checkByte(coarse[i], 255, "encodeCifar100File", i);
    out[r + 1] = checkByte(fine[i], 255, "encodeCifar100File", i);
    out.set(images.subarray(i * CIFAR_IMAGE_BYTES, (i + 1) * CIFAR_IMAGE_BYTES), r + 2);
  }
  return out;
}

/**
 * Encodes an idx unsigned-byte file: magic `00 00 08 D`, D big-endian uint32 sizes, data.
 * Use dims [N, rows, cols] for images (magic 0x00000803) and [N] for labels (0x00000801).
 * `gzip(encodeIdx(…))` (from `data/gzip.ts`) gives the `.gz` form.
 */
export function encodeIdx(data: Uint8Array, dims: number[]): Uint8Array {
  if (dims.length < 1 || dims.length > 255) throw new Error(`encodeIdx: bad number of dims ${dims.length}`);
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new Error(`encodeIdx: dims [${dims.join(", ")}] need ${count} bytes, got ${data.length}`);
  }
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + count);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x00000800 | dims.length, false);
  dims.forEach((d, k) => view.setUint32(4 + 4 * k, d, false));
  out.set(data, header);
  return out;
}
