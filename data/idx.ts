/**
 * Loader for the idx format of MNIST and Fashion-MNIST (plain or gzipped).
 *
 * An idx file starts with a 4-byte magic `00 00 08 D` (unsigned bytes, D dimensions), then D
 * big-endian uint32 sizes, then the data. Images are `0x00000803` (N, rows, cols), labels
 * `0x00000801` (N). Gzip is detected by its magic `1f 8b`. Byte offsets in error messages
 * refer to the decompressed data for gzipped files.
 * @module
 */

import { gunzipSync } from "node:zlib";
import type { Dataset } from "./dataset.ts";

/** Magic number of an idx file of unsigned bytes with 3 dimensions (images). */
export const IDX_IMAGES_MAGIC = 0x00000803;
/** Magic number of an idx file of unsigned bytes with 1 dimension (labels). */
export const IDX_LABELS_MAGIC = 0x00000801;

/** Where Debian's `dataset-fashion-mnist` package installs the files. */
export const DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

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

/** True when `bytes` start with the gzip magic 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Gunzips `bytes` when they start with the gzip magic; otherwise returns them unchanged. */
export function maybeGunzip(bytes: Uint8Array, file = "<bytes>"): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  try {
    const out = gunzipSync(bytes);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
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

async function readFileExplained(path: string, expected: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`${path}: file not found (expected ${expected})`, { cause: e });
    }
    throw e;
  }
}

/** Reads and parses an idx ubyte file (gzipped or not) with `ndims` dimensions. */
export async function readIdx(path: string, ndims: number): Promise<IdxArray> {
  const what = ndims === 3
    ? "idx3-ubyte images, magic 0x00000803"
    : `idx ubyte file with ${ndims} dimensions`;
  const raw = await readFileExplained(path, `${what}, optionally gzipped`);
  const gz = isGzip(raw);
  return parseIdx(maybeGunzip(raw, path), ndims, path, gz);
}

/** Options of {@link loadIdxDataset}. */
export type IdxDatasetOptions = {
  /** Number of classes; labels must lie in [0, numClasses). Default 10. */
  numClasses?: number;
  /** Class names, in label order. */
  classNames?: string[];
};

/**
 * Loads an idx images file (N×rows×cols) and an idx labels file (N) into a one-channel
 * {@link Dataset}. Labels must be in [0, numClasses) (default 10); errors name the file,
 * the index and the byte offset.
 */
export async function loadIdxDataset(
  imagesPath: string,
  labelsPath: string,
  name: string,
  opts: IdxDatasetOptions = {},
): Promise<Dataset> {
  const numClasses = opts.numClasses ?? 10;
  const [imgRaw, labRaw] = await Promise.all([
    readFileExplained(imagesPath, "an idx3-ubyte images file (magic 0x00000803), optionally gzipped"),
    readFileExplained(labelsPath, "an idx1-ubyte labels file (magic 0x00000801), optionally gzipped"),
  ]);
  const imgGz = isGzip(imgRaw), labGz = isGzip(labRaw);
  const img = parseIdx(maybeGunzip(imgRaw, imagesPath), 3, imagesPath, imgGz);
  const lab = parseIdx(maybeGunzip(labRaw, labelsPath), 1, labelsPath, labGz);
  const [n, height, width] = img.dims;
  if (lab.dims[0] !== n) {
    throw new Error(
      `${labelsPath}: has ${lab.dims[0]} labels (count at byte 4) but ${imagesPath} has ${n} images`,
    );
  }
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = lab.data[i];
    if (v >= numClasses) {
      throw new Error(
        `${labelsPath}: label ${i} at byte ${8 + i}${labGz ? " (decompressed)" : ""} is ${v}, ` +
          `out of range 0..${numClasses - 1}`,
      );
    }
    labels[i] = v;
  }
  const ds: Dataset = {
    name,
    images: img.data.slice(),
    labels,
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

/** Paths of the four Fashion-MNIST files. */
export type FashionMnistPaths = {
  /** The directory searched. */
  dir: string;
  /** Training images and labels (60,000). */
  train: { images: string; labels: string };
  /** Test images and labels (10,000). */
  test: { images: string; labels: string };
};

function existsFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * Finds the Fashion-MNIST idx files in `dir` (default: where Debian's `dataset-fashion-mnist`
 * package installs them, {@link DEBIAN_FASHION_MNIST_DIR}), accepting `.gz` or plain names.
 * Returns null when any of the four files is absent (or read permission is missing).
 */
export function findFashionMnist(dir: string = DEBIAN_FASHION_MNIST_DIR): FashionMnistPaths | null {
  const pick = (base: string): string | null => {
    for (const name of [`${base}.gz`, base]) {
      const p = `${dir}/${name}`;
      if (existsFile(p)) return p;
    }
    return null;
  };
  const ti = pick("train-images-idx3-ubyte"), tl = pick("train-labels-idx1-ubyte");
  const ei = pick("t10k-images-idx3-ubyte"), el = pick("t10k-labels-idx1-ubyte");
  if (!ti || !tl || !ei || !el) return null;
  return { dir, train: { images: ti, labels: tl }, test: { images: ei, labels: el } };
}

/**
 * Loads a Fashion-MNIST split found by {@link findFashionMnist} (throws when absent, saying
 * how to install it).
 */
export async function loadFashionMnist(
  split: "train" | "test",
  dir: string = DEBIAN_FASHION_MNIST_DIR,
): Promise<Dataset> {
  const paths = findFashionMnist(dir);
  if (!paths) {
    throw new Error(
      `Fashion-MNIST not found in ${dir} (expected train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, ` +
        `t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; on Debian: apt-get install dataset-fashion-mnist)`,
    );
  }
  const p = split === "train" ? paths.train : paths.test;
  return await loadIdxDataset(p.images, p.labels, `fashion-mnist-${split}`, {
    classNames: [...FASHION_MNIST_CLASSES],
  });
}
