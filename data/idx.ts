/**
 * Loader for the idx format of MNIST and Fashion-MNIST (plain or gzipped).
 *
 * An idx file starts with a 4-byte magic `00 00 08 D` (unsigned bytes, D dimensions), then D
 * big-endian uint32 sizes, then the data. Images are `0x00000803` (N, rows, cols), labels
 * `0x00000801` (N). Gzip is detected by its magic `1f 8b` and undone with the web-standard
 * `DecompressionStream`. Byte offsets in error messages refer to the decompressed data for gzipped
 * files.
 *
 * These functions take bytes ({@link DataFile}); `data/files.ts` reads them from disk in Deno
 * (`readIdx`, `loadIdxDataset`, `loadFashionMnist`).
 * @module
 */

import type { DataFile, Dataset } from "./dataset.ts";
import { gunzip, isGzip } from "./gzip.ts";

/** Magic number of an idx file of unsigned bytes with 3 dimensions (images). */
export const IDX_IMAGES_MAGIC = 0x00000803;
/** Magic number of an idx file of unsigned bytes with 1 dimension (labels). */
export const IDX_LABELS_MAGIC = 0x00000801;

/** A parsed idx ubyte file. */
export type IdxArray = {
  /** Dimension sizes, e.g. [N, 28, 28]. */
  dims: number[];
  /** The data (row-major), a view into the (decompressed) file. */
  data: Uint8Array;
};

function hex8(x: number): string {
  return "0x" + (x >>> 0).toString(16).padStart(8, "0");
}

/**
 * Gunzips `bytes` when they start with the gzip magic; otherwise returns them unchanged. A corrupt
 * or truncated stream rejects with an error naming `file`.
 */
export async function maybeGunzip(bytes: Uint8Array, file = "<bytes>"): Promise<Uint8Array> {
  if (!isGzip(bytes)) return bytes;
  try {
    return await gunzip(bytes);
  } catch (e) {
    throw new Error(`${file}: gzip decompression failed (${(e as Error).message})`, { cause: e });
  }
}

/**
 * Parses an idx ubyte file (already decompressed) with `ndims` dimensions; throws errors that
 * name the file and the byte offset of the problem.
 */
export function parseIdx(bytes: Uint8Array, ndims: number, file = "<bytes>", gz = false): IdxArray {
  const where = gz ? " (decompressed)" : "";
  const header = 4 + 4 * ndims;
  const expectedMagic = 0x00000800 | ndims;
  const what = ndims === 3 ? "images" : ndims === 1 ? "labels" : `${ndims}-d array`;
  if (bytes.length < 4) {
    throw new Error(
      `${file}: ${bytes.length} bytes${where}, too short for the 4-byte idx magic (expected ${what})`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (magic !== expectedMagic) {
    throw new Error(
      `${file}: bad magic ${hex8(magic)} at byte 0${where}, expected ${hex8(expectedMagic)} ` +
        `(idx unsigned-byte ${what}, ${ndims} dimension${ndims === 1 ? "" : "s"})`,
    );
  }
  if (bytes.length < header) {
    throw new Error(
      `${file}: header truncated at byte ${bytes.length}${where}, expected ${header} header bytes for ${ndims} dimensions`,
    );
  }
  const dims: number[] = [];
  let count = 1;
  for (let k = 0; k < ndims; k++) {
    const d = view.getUint32(4 + 4 * k, false);
    if (d === 0 && k > 0) throw new Error(`${file}: dimension ${k} is 0 at byte ${4 + 4 * k}${where}`);
    dims.push(d);
    count *= d;
  }
  const expectedLen = header + count;
  if (bytes.length < expectedLen) {
    const item = ndims === 1 ? 1 : count / dims[0];
    const k = Math.floor((bytes.length - header) / item);
    throw new Error(
      `${file}: truncated: item ${k} of ${dims[0]} starts at byte ${
        header + k * item
      }${where} but the data ends at byte ` +
        `${bytes.length}; dims [${dims.join(", ")}] need ${expectedLen} bytes`,
    );
  }
  if (bytes.length > expectedLen) {
    throw new Error(
      `${file}: ${bytes.length - expectedLen} unexpected trailing bytes from byte ${expectedLen}${where} ` +
        `(dims [${dims.join(", ")}] need exactly ${expectedLen} bytes)`,
    );
  }
  return { dims, data: bytes.subarray(header, expectedLen) };
}

/** Decodes an idx ubyte file (gzipped or not) with `ndims` dimensions. */
export async function decodeIdx(bytes: Uint8Array, ndims: number, file = "<bytes>"): Promise<IdxArray> {
  return parseIdx(await maybeGunzip(bytes, file), ndims, file, isGzip(bytes));
}

/** Options of {@link idxDataset}. */
export type IdxDatasetOptions = {
  /** Number of classes; labels must lie in [0, numClasses). Default 10. */
  numClasses?: number;
  /** Class names, in label order. */
  classNames?: string[];
};

/**
 * Decodes an idx images file (N×rows×cols) and an idx labels file (N), each gzipped or not, into a
 * one-channel {@link Dataset}. Labels must be in [0, numClasses) (default 10); errors name the file,
 * the index and the byte offset.
 */
export async function idxDataset(
  images: DataFile,
  labels: DataFile,
  name: string,
  opts: IdxDatasetOptions = {},
): Promise<Dataset> {
  const numClasses = opts.numClasses ?? 10;
  const imagesPath = images.file, labelsPath = labels.file;
  const labGz = isGzip(labels.bytes);
  // In order, so that of two bad files the images file is the one reported.
  const img = await decodeIdx(images.bytes, 3, imagesPath);
  const lab = await decodeIdx(labels.bytes, 1, labelsPath);
  const [n, height, width] = img.dims;
  if (lab.dims[0] !== n) {
    throw new Error(
      `${labelsPath}: has ${lab.dims[0]} labels (count at byte 4) but ${imagesPath} has ${n} images`,
    );
  }
  const labelValues = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = lab.data[i];
    if (v >= numClasses) {
      throw new Error(
        `${labelsPath}: label ${i} at byte ${8 + i}${labGz ? " (decompressed)" : ""} is ${v}, ` +
          `out of range 0..${numClasses - 1}`,
      );
    }
    labelValues[i] = v;
  }
  const ds: Dataset = {
    name,
    images: img.data.slice(),
    labels: labelValues,
    n,
    channels: 1,
    height,
    width,
    numClasses,
  };
  if (opts.classNames) ds.classNames = opts.classNames;
  return ds;
}

/** The Fashion-MNIST class names, in label order. */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/**
 * Decodes a Fashion-MNIST split from its idx images and labels files (gzipped or not), e.g. the
 * bytes of `train-images-idx3-ubyte.gz` and `train-labels-idx1-ubyte.gz`.
 */
export function fashionMnistDataset(
  split: "train" | "test",
  images: DataFile,
  labels: DataFile,
): Promise<Dataset> {
  return idxDataset(images, labels, `fashion-mnist-${split}`, { classNames: [...FASHION_MNIST_CLASSES] });
}
