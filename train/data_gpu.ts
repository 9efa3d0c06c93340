/**
 * A dataset resident on the GPU, and batch assembly from uploaded indices.
 *
 * The images are uploaded once as packed uint8 (engine/ops/augment.ts `uploadImages`). Per step the
 * CPU draws the batch indices and augmentation parameters from seeded generators and uploads them
 * (a few hundred words); `augmentBatch` then gathers, crops (zero padding 4, as torchvision's
 * `RandomCrop(32, padding=4)`), flips and normalises the batch with the training set's per-channel
 * mean and std in one kernel, and `gatherRows` gathers the labels. Nothing is read back.
 * {@link BatchFeed} puts the three together: sampler → upload → assembled batch and labels.
 * @module
 */
import { empty, fmtShape, ShapeError, type Tensor, writeTensor } from "../engine/tensor.ts";
import { gatherRows } from "../engine/ops/shape.ts";
import { augmentBatch, augmentParams, uploadImages } from "../engine/ops/augment.ts";
import type { ChannelStats, Dataset } from "../data/dataset.ts";
import { channelMeanStd } from "../data/dataset.ts";
import type { BatchSampler, Rng } from "../data/sampler.ts";

/** Padding of the random crop (torchvision's `RandomCrop(32, padding=4)`). */
export const CROP_PADDING = 4;

/** Options of {@link GpuDataset.upload}. */
export interface GpuDatasetOptions {
  /** Labels to use instead of `ds.labels` (e.g. after corruption). */
  labels?: Int32Array;
  /** Normalisation statistics (default: the per-channel mean/std of `ds` itself). */
  stats?: ChannelStats;
}

/**
 * A labelled image dataset on the GPU: packed uint8 images, i32 labels, and the normalisation
 * statistics.
 */
export class GpuDataset {
  /** Dataset name. */
  readonly name: string;
  /** Number of images N. */
  readonly n: number;
  /** Channels C. */
  readonly channels: number;
  /** Height H. */
  readonly height: number;
  /** Width W. */
  readonly width: number;
  /** Classes K. */
  readonly numClasses: number;
  /** Packed images (u32, from `uploadImages`). */
  readonly images: Tensor;
  /** Labels on the GPU, i32 [N]. */
  readonly labels: Tensor;
  /** The same labels on the host. */
  readonly hostLabels: Int32Array;
  /** Per-channel mean and std (in [0, 1] pixel scale) used to normalise. */
  readonly stats: ChannelStats;
  #disposed = false;

  private constructor(
    ds: Dataset,
    labels: Int32Array,
    stats: ChannelStats,
    images: Tensor,
    labelTensor: Tensor,
  ) {
    this.name = ds.name;
    this.n = ds.n;
    this.channels = ds.channels;
    this.height = ds.height;
    this.width = ds.width;
    this.numClasses = ds.numClasses;
    this.hostLabels = labels;
    this.stats = stats;
    this.images = images;
    this.labels = labelTensor;
  }

  /** Uploads `ds` (images packed as uint8, labels as i32). */
  static upload(ds: Dataset, options: GpuDatasetOptions = {}): GpuDataset {
    const labels = options.labels ?? ds.labels;
    if (labels.length !== ds.n) {
      throw new ShapeError("GpuDataset.upload", `${labels.length} labels for ${ds.n} images of ${ds.name}`);
    }
    if (ds.n === 0) throw new ShapeError("GpuDataset.upload", `${ds.name} has no images`);
    const stats = options.stats ?? channelMeanStd(ds);
    if (stats.mean.length !== ds.channels || stats.std.length !== ds.channels) {
      throw new ShapeError(
        "GpuDataset.upload",
        `statistics for ${stats.mean.length} channels, images have ${ds.channels}`,
      );
    }
    // A constant channel has std 0: normalise it by 1 instead of dividing by zero.
    const safe: ChannelStats = { mean: [...stats.mean], std: stats.std.map((s) => (s > 0 ? s : 1)) };
    const images = uploadImages(ds.images, [ds.n, ds.channels, ds.height, ds.width]);
    const labelTensor = empty([ds.n], "i32");
    writeTensor(labelTensor, labels);
    return new GpuDataset(ds, Int32Array.from(labels), safe, images, labelTensor);
  }

  #check(op: string, indices: Tensor): number {
    if (this.#disposed) throw new ShapeError(op, `${this.name} was disposed`);
    if (indices.rank !== 1 || indices.dtype !== "i32") {
      throw new ShapeError(op, `indices must be i32 [b], got ${indices.dtype}${fmtShape(indices.shape)}`);
    }
    return indices.shape[0];
  }

  /**
   * Records the assembly of the images at `indices` (i32 [b], each in [0, N)) into a normalised f32
   * batch [b, C, H, W]. With `params` (i32 [b, 3] of dx, dy, flip; see {@link drawAugmentParams})
   * each image is cropped with zero padding and flipped; without, images are taken as they are.
   */
  assemble(indices: Tensor, params: Tensor | null = null): Tensor {
    this.#check("GpuDataset.assemble", indices);
    return augmentBatch(this.images, indices, params, {
      crop: CROP_PADDING,
      flip: true,
      mean: this.stats.mean,
      std: this.stats.std,
      width: this.width,
    });
  }

  /** Records the gather of the labels at `indices` (i32 [b]) → i32 [b] (0 for an index outside [0, N)). */
  gatherLabels(indices: Tensor): Tensor {
    const b = this.#check("GpuDataset.gatherLabels", indices);
    return b === 0 ? empty([0], "i32") : gatherRows(this.labels, indices);
  }

  /** Frees the GPU buffers. Safe to call twice. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.images.dispose();
    this.labels.dispose();
  }

  /** `using data = GpuDataset.upload(...)`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * Draws the augmentation parameters of `b` samples from `rng` (engine/ops/augment.ts `augmentParams`:
 * dx, dy uniform in [−4, 4], flip with probability 1/2, in that order per sample) → i32 [b·3].
 */
export function drawAugmentParams(rng: Rng, b: number): Int32Array {
  return augmentParams(b, () => rng.uniform(), { crop: CROP_PADDING, flip: true });
}

/**
 * Fixed-size upload buffers of one batch: indices (i32 [b]) and augmentation parameters (u32 [b]),
 * rewritten each step (a queue write, ordered after the work submitted before it).
 */
export class BatchBuffers {
  /** Batch size. */
  readonly size: number;
  /** Indices i32 [b]. */
  readonly indices: Tensor;
  /** Augmentation parameters i32 [b, 3] (dx, dy, flip). */
  readonly params: Tensor;

  /** Upload buffers for batches of `size`. */
  constructor(size: number) {
    this.size = size;
    this.indices = empty([size], "i32");
    this.params = empty([size, 3], "i32");
  }

  /** Uploads the indices and, with `rng`, freshly drawn augmentation parameters. */
  upload(indices: Int32Array, rng: Rng | null): void {
    if (indices.length !== this.size) {
      throw new ShapeError("BatchBuffers.upload", `${indices.length} indices for a batch of ${this.size}`);
    }
    writeTensor(this.indices, indices);
    if (rng) writeTensor(this.params, drawAugmentParams(rng, this.size));
  }

  /** Frees the buffers. */
  dispose(): void {
    this.indices.dispose();
    this.params.dispose();
  }
}

/**
 * Pads every image of `ds` with zeros to `size`×`size` (centred), e.g. Fashion-MNIST 28×28 → 32×32
 * so that ResNet-18's three stride-2 stages divide it. Returns `ds` itself when it already fits.
 */
export function padDataset(ds: Dataset, size: number): Dataset {
  if (ds.height === size && ds.width === size) return ds;
  if (ds.height > size || ds.width > size) {
    throw new Error(
      `padDataset: ${ds.name} images are ${ds.height}×${ds.width}, larger than ${size}×${size}`,
    );
  }
  const top = Math.floor((size - ds.height) / 2), left = Math.floor((size - ds.width) / 2);
  const inSz = ds.channels * ds.height * ds.width, outSz = ds.channels * size * size;
  const images = new Uint8Array(ds.n * outSz);
  for (let i = 0; i < ds.n; i++) {
    for (let c = 0; c < ds.channels; c++) {
      for (let y = 0; y < ds.height; y++) {
        const src = i * inSz + (c * ds.height + y) * ds.width;
        const dst = i * outSz + (c * size + y + top) * size + left;
        images.set(ds.images.subarray(src, src + ds.width), dst);
      }
    }
  }
  return { ...ds, images, height: size, width: size, name: `${ds.name}[pad ${size}]` };
}

/** Options of {@link BatchFeed}. */
export interface BatchFeedOptions {
  /** Where the indices of each batch come from (its `batchSize` is the batch size). */
  sampler: BatchSampler;
  /** Generator of the augmentation parameters (crop and flip); null or absent: no augmentation. */
  augment?: Rng | null;
}

/**
 * Training batches of a {@link GpuDataset}: each {@link next} draws indices from the sampler (and
 * augmentation parameters from the generator) on the CPU, uploads them (ordered writes, no submit) and
 * records the assembly of the images and the gather of their labels. Save the sampler's and the
 * generator's states with a checkpoint and the batches continue exactly.
 */
export class BatchFeed {
  /** The dataset. */
  readonly data: GpuDataset;
  /** The index sampler. */
  readonly sampler: BatchSampler;
  /** The augmentation generator (null: none). */
  readonly augment: Rng | null;
  /** The upload buffers. */
  readonly buffers: BatchBuffers;
  #host: Int32Array;

  /** A feed of `data` by `options.sampler`. */
  constructor(data: GpuDataset, options: BatchFeedOptions) {
    this.data = data;
    this.sampler = options.sampler;
    this.augment = options.augment ?? null;
    this.buffers = new BatchBuffers(options.sampler.batchSize);
    this.#host = new Int32Array(options.sampler.batchSize);
  }

  /** Uploads the next batch's indices (and augmentation) and records its images x and labels y. */
  next(): { x: Tensor; y: Tensor } {
    this.sampler.next(this.#host);
    this.buffers.upload(this.#host, this.augment);
    const x = this.data.assemble(this.buffers.indices, this.augment ? this.buffers.params : null);
    return { x, y: this.data.gatherLabels(this.buffers.indices) };
  }

  /** Frees the upload buffers (not the dataset). */
  dispose(): void {
    this.buffers.dispose();
  }
}
