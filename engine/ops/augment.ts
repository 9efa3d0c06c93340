/**
 * Data augmentation on the GPU: the whole uint8 dataset stays resident (4 pixels per u32), and each
 * batch is gathered by index, randomly cropped (zero padding) and flipped, and normalised in one
 * kernel. The random parameters are drawn on the CPU from a seeded generator (so a resumed run draws
 * the same ones) and uploaded as a small i32 tensor [b, 3] of (dx, dy, flip).
 *
 * Matches torchvision's `RandomCrop(size, padding=p)` then `RandomHorizontalFlip()` then
 * `Normalize(mean, std)` on `ToTensor()` inputs: padded pixels are 0 in raw pixel space, so they
 * become `(0 − mean)/std` after normalisation.
 *
 * @module
 */
import { gpu } from "../gpu.ts";
import { read, runKernel, write } from "../program.ts";
import { empty, fmtShape, ShapeError, Storage, Tensor } from "../tensor.ts";
import { grid1d } from "../../shaders/common.ts";
import { augmentBody, wordsPerRow } from "../../shaders/augment.ts";

/** Logical [N, C, H, W] of tensors made by `uploadImages` (their own shape is [N, C, H, ⌈W/4⌉] words). */
const imageShapes = new WeakMap<Tensor, readonly [number, number, number, number]>();

/**
 * Uploads N×C×H×W uint8 images (CHW per image, images consecutive: the CIFAR layout) as a u32
 * tensor of shape [N, C, H, ⌈W/4⌉]: 4 pixels per word, little-endian, each image row padded to whole
 * words (no repacking when W is a multiple of 4). `augmentBatch` knows the true width.
 */
export function uploadImages(u8: Uint8Array, shape: readonly [number, number, number, number]): Tensor {
  const [n, c, h, w] = shape;
  if (
    shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d <= 0) || u8.length !== n * c * h * w
  ) {
    throw new ShapeError("uploadImages", `${u8.length} bytes do not fill images of shape ${fmtShape(shape)}`);
  }
  const w4 = wordsPerRow(w);
  const bytes = new Uint8Array(n * c * h * w4 * 4);
  if (w4 * 4 === w) {
    bytes.set(u8);
  } else {
    for (let row = 0; row < n * c * h; row++) bytes.set(u8.subarray(row * w, (row + 1) * w), row * w4 * 4);
  }
  const g = gpu();
  const range = g.allocate(bytes.byteLength, true);
  const t = new Tensor([n, c, h, w4], "u32", new Storage(range, true));
  g.writeNow({ ...range, size: bytes.byteLength }, new Uint32Array(bytes.buffer)); // fresh upload buffer
  imageShapes.set(t, [n, c, h, w]);
  return t;
}

/** Options of {@link augmentBatch}. */
export interface AugmentOptions {
  /** Crop padding p (default 4): offsets dx, dy are clamped to [−p, p]; 0 disables the crop. */
  crop?: number;
  /** Honour the flip flag of the params (default true). */
  flip?: boolean;
  /** Per-channel mean in [0, 1] pixel scale (length C). */
  mean: readonly number[];
  /** Per-channel standard deviation in [0, 1] pixel scale (length C). */
  std: readonly number[];
  /** Image width, for u32 image tensors not made by `uploadImages` (default 4 × their last dimension). */
  width?: number;
  /** Internal (tests): the largest storage binding in bytes (default: the device limit). */
  maxBindingBytes?: number;
}

/**
 * Random augmentation parameters for a batch of `b`: (dx, dy, flip) per sample with dx, dy uniform
 * in [−crop, crop] and flip = 1 with probability 1/2 (when `flip`), drawn from `random` (a seeded
 * generator of uniforms in [0, 1)) in the order dx, dy, flip per sample.
 */
export function augmentParams(
  b: number,
  random: () => number,
  { crop = 4, flip = true }: { crop?: number; flip?: boolean } = {},
): Int32Array {
  const out = new Int32Array(b * 3);
  for (let s = 0; s < b; s++) {
    out[3 * s] = crop > 0 ? Math.floor(random() * (2 * crop + 1)) - crop : 0;
    out[3 * s + 1] = crop > 0 ? Math.floor(random() * (2 * crop + 1)) - crop : 0;
    out[3 * s + 2] = flip ? (random() < 0.5 ? 1 : 0) : 0;
  }
  return out;
}

/**
 * The augmented, normalised batch f32 [b, C, H, W] of the images at `indices` (i32 [b]) of the
 * uploaded dataset `images`. `params` (i32 [b, 3] of dx, dy, flip; see `augmentParams`) gives each
 * sample's crop offset (output pixel (y, x) reads pixel (y + dy, x + dx) of the image, 0 outside it:
 * torchvision's crop at (4 + dy, 4 + dx) of the 4-padded image) and flip (applied after the crop);
 * `null` means no augmentation. An index outside [0, N) makes its sample NaN (indices live on the GPU
 * and are not checked on the host). No autograd.
 */
export function augmentBatch(
  images: Tensor,
  indices: Tensor,
  params: Tensor | null,
  options: AugmentOptions,
): Tensor {
  const op = "augmentBatch";
  if (images.dtype !== "u32" || images.rank !== 4) {
    throw new ShapeError(
      op,
      `images must be u32 [N, C, H, W/4] from uploadImages, got ${images.dtype}${fmtShape(images.shape)}`,
    );
  }
  const known = imageShapes.get(images);
  const [n, c, h, w4] = images.shape;
  const w = options.width ?? known?.[3] ?? 4 * w4;
  if (wordsPerRow(w) !== w4) {
    throw new ShapeError(op, `width ${w} does not match images ${fmtShape(images.shape)}`);
  }
  if (indices.dtype !== "i32" || indices.rank !== 1) {
    throw new ShapeError(op, `indices must be i32 [b], got ${indices.dtype}${fmtShape(indices.shape)}`);
  }
  const b = indices.shape[0];
  if (
    params && (params.dtype !== "i32" || params.rank !== 2 || params.shape[0] !== b || params.shape[1] !== 3)
  ) {
    throw new ShapeError(
      op,
      `params must be i32 [${b}, 3] for indices [${b}], got ${params.dtype}${fmtShape(params.shape)}`,
    );
  }
  const { mean, std } = options;
  if (mean.length !== c || std.length !== c || std.some((s) => !(s > 0))) {
    throw new ShapeError(op, `mean and std need ${c} values (std > 0), got ${mean.length} and ${std.length}`);
  }
  const pad = options.crop ?? 4;
  if (!Number.isInteger(pad) || pad < 0) {
    throw new ShapeError(op, `crop padding must be an integer ≥ 0, got ${pad}`);
  }
  const g = gpu();
  // The dataset may exceed one storage binding (CIFAR-10 train: 153.6 MB > 128 MiB): bind it in chunks.
  const limit = options.maxBindingBytes ?? g.report.limits.maxStorageBufferBindingSize ?? 128 * 2 ** 20;
  const chunkWords = Math.max(64, Math.floor(limit / 256) * 64);
  const range = images.range;
  const words = range.size / 4;
  const chunks = Math.max(1, Math.ceil(words / chunkWords));
  const storageBuffers = (params ? 3 : 2) + chunks;
  const maxStorageBuffers = g.report.limits.maxStorageBuffersPerShaderStage ?? 8;
  if (storageBuffers > maxStorageBuffers) {
    throw new ShapeError(
      op,
      `the images need ${chunks} bindings of at most ${chunkWords * 4} bytes: ${storageBuffers} storage ` +
        `buffers in one kernel, more than this adapter's ${maxStorageBuffers} per shader stage`,
    );
  }
  const out = empty([b, c, h, w]);
  if (out.size === 0) return out;
  const imageBindings = Array.from({ length: chunks }, (_, k) => ({
    buffer: range.buffer,
    offset: range.offset + k * chunkWords * 4,
    size: Math.min(chunkWords, words - k * chunkWords) * 4,
  }));
  const body = augmentBody({
    n,
    c,
    h,
    w,
    batch: b,
    pad,
    flip: options.flip ?? true,
    withParams: params !== null,
    mean,
    std,
    chunkWords,
    chunks,
  });
  const bindings = [
    write("out", out),
    read("indices", indices, "array<i32>"),
    ...(params ? [read("params", params, "array<i32>")] : []),
    ...imageBindings.map((r, k) => read(`img${k}`, r, "array<u32>")),
  ];
  runKernel({ name: op, bindings, body, workgroups: grid1d(out.size) });
  return out;
}
