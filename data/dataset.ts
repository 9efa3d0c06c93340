/**
 * In-memory image datasets (CPU side) and helpers to slice them.
 *
 * Images are stored as one `Uint8Array` of N×C×H×W bytes: each image is CHW
 * (channel planes, each row-major), images follow each other.
 * @module
 */

import { Rng } from "./sampler.ts";

/** An in-memory labelled image dataset, uint8 pixels in CHW order per image. */
export type Dataset = {
  /** Human-readable name, e.g. `"cifar10-train"`. */
  name: string;
  /** N×C×H×W bytes: image `i` occupies `[i*C*H*W, (i+1)*C*H*W)`, channel planes row-major. */
  images: Uint8Array;
  /** N labels in `[0, numClasses)`. */
  labels: Int32Array;
  /** Number of images N. */
  n: number;
  /** Channels C (3 for CIFAR, 1 for (Fashion-)MNIST). */
  channels: number;
  /** Height H in pixels. */
  height: number;
  /** Width W in pixels. */
  width: number;
  /** Number of classes K. */
  numClasses: number;
  /** Optional class names, `classNames[k]` for label k. */
  classNames?: string[];
};

/**
 * A data file already in memory: its bytes, and its name for error messages (a path, a URL, a
 * file picker's name). The loaders in `data/` take files this way, so they run wherever the
 * bytes come from (`fetch`, a file input, `Deno.readFile`).
 */
export type DataFile = {
  /** Name used in error messages. */
  file: string;
  /** The file's contents. */
  bytes: Uint8Array;
};

/**
 * A data file read on demand: its name, its size, and how to read it. A loader given several
 * lazy files holds only one of them in memory at a time, next to the dataset it fills.
 */
export type LazyDataFile = {
  /** Name used in error messages. */
  file: string;
  /** Size in bytes (what `read` will return). */
  size: number;
  /** Reads the contents. */
  read: () => Promise<Uint8Array>;
};

/** Bytes per image of `ds` (C·H·W). */
export function imageSize(ds: Dataset): number {
  return ds.channels * ds.height * ds.width;
}

/**
 * Check the internal consistency of a dataset (buffer sizes, label range).
 * Throws an `Error` describing the first problem found.
 */
export function validateDataset(ds: Dataset): void {
  const sz = imageSize(ds);
  if (!Number.isInteger(ds.n) || ds.n < 0) throw new Error(`${ds.name}: bad n ${ds.n}`);
  if (ds.images.length !== ds.n * sz) {
    throw new Error(`${ds.name}: images has ${ds.images.length} bytes, expected n*C*H*W = ${ds.n * sz}`);
  }
  if (ds.labels.length !== ds.n) {
    throw new Error(`${ds.name}: labels has ${ds.labels.length} entries, expected n = ${ds.n}`);
  }
  for (let i = 0; i < ds.n; i++) {
    const y = ds.labels[i];
    if (y < 0 || y >= ds.numClasses) {
      throw new Error(`${ds.name}: label ${y} of image ${i} outside [0, ${ds.numClasses})`);
    }
  }
}

/**
 * A new dataset holding copies of the images at `indices` (in that order; repeats allowed).
 * Throws on an out-of-range index.
 */
export function subset(ds: Dataset, indices: ArrayLike<number>, name?: string): Dataset {
  const sz = imageSize(ds);
  const m = indices.length;
  const images = new Uint8Array(m * sz);
  const labels = new Int32Array(m);
  for (let j = 0; j < m; j++) {
    const i = indices[j];
    if (!Number.isInteger(i) || i < 0 || i >= ds.n) {
      throw new Error(`subset of ${ds.name}: index ${i} (position ${j}) outside [0, ${ds.n})`);
    }
    images.set(ds.images.subarray(i * sz, (i + 1) * sz), j * sz);
    labels[j] = ds.labels[i];
  }
  return { ...ds, name: name ?? `${ds.name}[subset ${m}]`, images, labels, n: m };
}

/** The first `n` images of `ds` (views, not copies; `n` is clamped to `ds.n`). */
export function firstN(ds: Dataset, n: number): Dataset {
  const m = Math.max(0, Math.min(Math.floor(n), ds.n));
  const sz = imageSize(ds);
  return {
    ...ds,
    name: m === ds.n ? ds.name : `${ds.name}[:${m}]`,
    images: ds.images.subarray(0, m * sz),
    labels: ds.labels.subarray(0, m),
    n: m,
  };
}

/**
 * Indices of a class-balanced random subset: `perClass` distinct images drawn uniformly
 * (seeded) from each class, returned in ascending index order.
 * Throws if some class has fewer than `perClass` images.
 */
export function balancedIndices(ds: Dataset, perClass: number, seed: number): Int32Array {
  const byClass: number[][] = Array.from({ length: ds.numClasses }, () => []);
  for (let i = 0; i < ds.n; i++) byClass[ds.labels[i]].push(i);
  const rng = new Rng(seed);
  const out: number[] = [];
  for (let k = 0; k < ds.numClasses; k++) {
    const idx = byClass[k];
    if (idx.length < perClass) {
      throw new Error(`balancedSubset of ${ds.name}: class ${k} has ${idx.length} images, need ${perClass}`);
    }
    // partial Fisher–Yates: the first perClass entries become a uniform sample
    for (let j = 0; j < perClass; j++) {
      const r = j + rng.randInt(idx.length - j);
      const t = idx[j];
      idx[j] = idx[r];
      idx[r] = t;
      out.push(idx[j]);
    }
  }
  out.sort((a, b) => a - b);
  return Int32Array.from(out);
}

/** A class-balanced random subset with `perClass` images per class (see {@link balancedIndices}). */
export function balancedSubset(ds: Dataset, perClass: number, seed: number): Dataset {
  return subset(ds, balancedIndices(ds, perClass, seed), `${ds.name}[balanced ${perClass}/class]`);
}

/** Per-channel statistics in [0,1] pixel scale. */
export type ChannelStats = {
  /** Mean of each channel over all pixels of all images. */
  mean: number[];
  /** Population standard deviation of each channel over all pixels of all images. */
  std: number[];
};

/**
 * Per-channel mean and population std over every pixel of every image, in [0,1] scale
 * (pixel/255). Accumulates exact integer sums in float64, so the result does not depend
 * on image order.
 */
export function channelMeanStd(ds: Dataset): ChannelStats {
  const C = ds.channels, hw = ds.height * ds.width;
  const mean: number[] = [], std: number[] = [];
  for (let c = 0; c < C; c++) {
    let s = 0, ss = 0;
    for (let i = 0; i < ds.n; i++) {
      const off = (i * C + c) * hw;
      // the partial sums of one plane fit easily in int53
      let ps = 0, pss = 0;
      for (let p = 0; p < hw; p++) {
        const v = ds.images[off + p];
        ps += v;
        pss += v * v;
      }
      s += ps;
      ss += pss;
    }
    const cnt = ds.n * hw;
    if (cnt === 0) {
      mean.push(NaN);
      std.push(NaN);
      continue;
    }
    const m = s / cnt;
    const v = Math.max(0, ss / cnt - m * m);
    mean.push(m / 255);
    std.push(Math.sqrt(v) / 255);
  }
  return { mean, std };
}

/** Number of images of each class, `counts[k]` for label k. */
export function classCounts(ds: Dataset): Int32Array {
  const counts = new Int32Array(ds.numClasses);
  for (let i = 0; i < ds.n; i++) counts[ds.labels[i]]++;
  return counts;
}
