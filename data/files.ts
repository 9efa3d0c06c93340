/**
 * Deno side of the datasets: reads CIFAR-10/100 and idx files from disk and writes them (for
 * tests), around the byte-level decoders of `cifar.ts`, `idx.ts` and `synthetic.ts`.
 *
 * Not part of `mod.ts`, whose graph is web-standard: the experiments, benchmarks and tests
 * import this module directly. Missing files fail with the path and what was expected there.
 * @module
 */

import {
  CIFAR100_RECORD_BYTES,
  cifar100Dataset,
  type Cifar100Options,
  CIFAR10_RECORD_BYTES,
  cifar10Dataset,
  cifar10Files,
  type CifarFile,
  parseClassNames,
} from "./cifar.ts";
import type { Dataset } from "./dataset.ts";
import { gzip } from "./gzip.ts";
import { decodeIdx, fashionMnistDataset, type IdxArray, idxDataset, type IdxDatasetOptions } from "./idx.ts";
import { encodeCifar100File, encodeCifar10Batch, encodeIdx } from "./synthetic.ts";

function joinPath(dir: string, file: string): string {
  return dir.endsWith("/") ? dir + file : `${dir}/${file}`;
}

function notFound(e: unknown, path: string, expected: string): unknown {
  return e instanceof Deno.errors.NotFound
    ? new Error(`${path}: file not found (expected ${expected})`, { cause: e })
    : e;
}

async function readFileExplained(path: string, expected: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw notFound(e, path, expected);
  }
}

/** A {@link CifarFile} read on demand from `path`, after checking it exists and is a regular file. */
async function lazyFile(path: string, expected: string): Promise<CifarFile> {
  let size: number;
  try {
    const st = await Deno.stat(path);
    if (!st.isFile) throw new Error(`${path}: not a regular file (expected ${expected})`);
    size = st.size;
  } catch (e) {
    throw notFound(e, path, expected);
  }
  return { file: path, size, read: () => Deno.readFile(path) };
}

async function readClassNames(path: string, count: number): Promise<string[] | undefined> {
  try {
    return parseClassNames(await Deno.readTextFile(path), count);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- CIFAR

/**
 * Loads a CIFAR-10 split from the binary version in `dir`
 * (`data_batch_1.bin` … `data_batch_5.bin` for `"train"`, `test_batch.bin` for `"test"`), with the
 * class names of `batches.meta.txt` when present. Errors name the file and, for malformed data,
 * the record and byte offset. One file is in memory at a time next to the dataset.
 */
export async function loadCifar10(dir: string, split: "train" | "test"): Promise<Dataset> {
  const expected =
    `a CIFAR-10 binary file of ${CIFAR10_RECORD_BYTES}-byte records (label byte + 3072 pixels); ` +
    `the CIFAR-10 binary version has ${cifar10Files("train").join(", ")} and test_batch.bin`;
  const files = await Promise.all(cifar10Files(split).map((f) => lazyFile(joinPath(dir, f), expected)));
  const classNames = await readClassNames(joinPath(dir, "batches.meta.txt"), 10);
  return await cifar10Dataset(split, files, classNames ? { classNames } : {});
}

/**
 * Loads a CIFAR-100 split from the binary version in `dir` (`train.bin` or `test.bin`), with the
 * class names of `fine_label_names.txt` / `coarse_label_names.txt` when present. Uses the fine
 * labels (100 classes) unless `labelKind: "coarse"` (20 classes). Both label bytes are validated
 * either way.
 */
export async function loadCifar100(
  dir: string,
  split: "train" | "test",
  opts: Cifar100Options = {},
): Promise<Dataset> {
  if (split !== "train" && split !== "test") {
    throw new Error(`CIFAR-100: split must be 'train' or 'test', got ${JSON.stringify(split)}`);
  }
  const kind = opts.labelKind ?? "fine";
  if (kind !== "fine" && kind !== "coarse") throw new Error(`CIFAR-100: unknown labelKind ${kind}`);
  const file = await lazyFile(
    joinPath(dir, `${split}.bin`),
    `a CIFAR-100 binary file of ${CIFAR100_RECORD_BYTES}-byte records (coarse label, fine label, 3072 pixels); ` +
      `the CIFAR-100 binary version has train.bin and test.bin`,
  );
  const classNames = await readClassNames(
    joinPath(dir, `${kind}_label_names.txt`),
    kind === "fine" ? 100 : 20,
  );
  return await cifar100Dataset(split, file, classNames ? { ...opts, classNames } : opts);
}

/** Writes a CIFAR-10 batch file (see `encodeCifar10Batch`). */
export async function writeCifar10Batch(
  path: string,
  images: Uint8Array,
  labels: ArrayLike<number>,
): Promise<void> {
  await Deno.writeFile(path, encodeCifar10Batch(images, labels));
}

/** Writes a CIFAR-100 binary file (see `encodeCifar100File`). */
export async function writeCifar100File(
  path: string,
  images: Uint8Array,
  coarse: ArrayLike<number>,
  fine: ArrayLike<number>,
): Promise<void> {
  await Deno.writeFile(path, encodeCifar100File(images, coarse, fine));
}

// ---------------------------------------------------------------- idx, Fashion-MNIST

/** Reads and decodes an idx ubyte file (gzipped or not) with `ndims` dimensions. */
export async function readIdx(path: string, ndims: number): Promise<IdxArray> {
  const what = ndims === 3
    ? "idx3-ubyte images, magic 0x00000803"
    : `idx ubyte file with ${ndims} dimensions`;
  return await decodeIdx(await readFileExplained(path, `${what}, optionally gzipped`), ndims, path);
}

/**
 * Loads an idx images file (N×rows×cols) and an idx labels file (N), gzipped or not, into a
 * one-channel {@link Dataset} (see `idxDataset`). Errors name the file, the index and the byte
 * offset.
 */
export async function loadIdxDataset(
  imagesPath: string,
  labelsPath: string,
  name: string,
  opts: IdxDatasetOptions = {},
): Promise<Dataset> {
  const [images, labels] = await Promise.all([
    readFileExplained(imagesPath, "an idx3-ubyte images file (magic 0x00000803), optionally gzipped"),
    readFileExplained(labelsPath, "an idx1-ubyte labels file (magic 0x00000801), optionally gzipped"),
  ]);
  return await idxDataset(
    { file: imagesPath, bytes: images },
    { file: labelsPath, bytes: labels },
    name,
    opts,
  );
}

/** Options of {@link writeIdx}. */
export type IdxWriteOptions = {
  /** Gzip the output (default false). */
  gzip?: boolean;
};

/** Writes an idx unsigned-byte file (see `encodeIdx`), gzipped when `opts.gzip`. */
export async function writeIdx(
  path: string,
  data: Uint8Array,
  dims: number[],
  opts: IdxWriteOptions = {},
): Promise<void> {
  const bytes = encodeIdx(data, dims);
  await Deno.writeFile(path, opts.gzip ? await gzip(bytes) : bytes);
}

/** Where Debian's `dataset-fashion-mnist` package installs the files. */
export const DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

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
  const [images, labels] = await Promise.all([
    readFileExplained(p.images, "an idx3-ubyte images file (magic 0x00000803), optionally gzipped"),
    readFileExplained(p.labels, "an idx1-ubyte labels file (magic 0x00000801), optionally gzipped"),
  ]);
  return await fashionMnistDataset(split, { file: p.images, bytes: images }, {
    file: p.labels,
    bytes: labels,
  });
}
