/**
 * WGSL builder of the batch augmentation kernel: gather images by index from the uint8 dataset
 * resident on the GPU (4 bytes per u32, each image row padded to a whole number of words), random crop
 * with zero padding, horizontal flip, per-channel normalisation. One invocation per output element.
 *
 * @module
 */
import { f32Lit, flatMain, NAN, NAN_FN } from "./common.ts";

/** Shapes and constants baked into an augmentation kernel. */
export interface AugmentSpec {
  /** Images in the dataset N. */
  n: number;
  /** Channels C. */
  c: number;
  /** Height H. */
  h: number;
  /** Width W. */
  w: number;
  /** Batch size b. */
  batch: number;
  /** Crop padding p: offsets are clamped to [−p, p] (0: no crop). */
  pad: number;
  /** Whether the flip flag is honoured. */
  flip: boolean;
  /** Whether a params buffer [b, 3] (dx, dy, flip) is bound (binding 2). */
  withParams: boolean;
  /** Per-channel mean in [0, 1] pixel scale. */
  mean: readonly number[];
  /** Per-channel standard deviation in [0, 1] pixel scale. */
  std: readonly number[];
  /** Words per image-data binding: the dataset is bound as several ranges when it exceeds one binding. */
  chunkWords: number;
  /** Number of image-data bindings. */
  chunks: number;
}

/** Words per padded image row. */
export function wordsPerRow(w: number): number {
  return Math.ceil(w / 4);
}

/**
 * `out[s, c, y, x] = (v/255 − mean_c)/std_c`, `v` the byte of image `indices[s]` at channel c, row
 * `y + dy`, column `(flip ? W−1−x : x) + dx` (crop of the zero-padded image, then flip), 0 outside the
 * image. An index outside [0, N) writes NaN for its whole sample.
 * Bindings (declared by the dispatch): `out` (f32, read_write), `indices` (i32), with `withParams`
 * `params` (i32), and the image chunks `img0`..`img{chunks−1}` (u32).
 */
export function augmentBody(s: AugmentSpec): string {
  const { n, c, h, w, batch, pad } = s;
  const w4 = wordsPerRow(w);
  const reads = Array.from(
    { length: s.chunks },
    (_, k) =>
      k === s.chunks - 1
        ? `return img${k}[word - ${k * s.chunkWords}u];`
        : `if (word < ${(k + 1) * s.chunkWords}u) { return img${k}[word - ${k * s.chunkWords}u]; }`,
  ).join("\n  ");
  const scale = s.std.map((sd) => f32Lit(1 / (255 * sd))).join(", ");
  const shift = s.mean.map((m, k) => f32Lit(m / s.std[k])).join(", ");
  const params = s.withParams
    ? `dx = clamp(params[s * 3u], -${pad}i, ${pad}i);
  dy = clamp(params[s * 3u + 1u], -${pad}i, ${pad}i);
  ${s.flip ? "fl = params[s * 3u + 2u] != 0i;" : ""}`
    : "";
  return `var<private> SCALE: array<f32, ${c}> = array<f32, ${c}>(${scale});
var<private> SHIFT: array<f32, ${c}> = array<f32, ${c}>(${shift});

${NAN_FN}

fn word_at(word: u32) -> u32 {
  ${reads}
}

${flatMain(batch * c * h * w)}
  let x = i32(i % ${w}u);
  let y = i32((i / ${w}u) % ${h}u);
  let ch = (i / ${w * h}u) % ${c}u;
  let s = i / ${c * h * w}u;
  let idx = indices[s];
  if (idx < 0i || idx >= ${n}i) { out[i] = ${NAN}; return; }
  var dx = 0i;
  var dy = 0i;
  var fl = false;
  ${params}
  let xs = select(x, ${w - 1}i - x, fl) + dx;
  let ys = y + dy;
  var v = 0.0;
  if (xs >= 0i && xs < ${w}i && ys >= 0i && ys < ${h}i) {
    let word = ((u32(idx) * ${c}u + ch) * ${h}u + u32(ys)) * ${w4}u + u32(xs) / 4u;
    v = f32((word_at(word) >> (8u * (u32(xs) % 4u))) & 0xffu);
  }
  out[i] = v * SCALE[ch] - SHIFT[ch];
}`;
}
