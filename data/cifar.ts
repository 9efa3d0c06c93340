/**
 * Loaders for the binary versions of CIFAR-10 and CIFAR-100.
 *
 * CIFAR-10: `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`, records of one label
 * byte then 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each 32×32 row-major — already
 * CHW). CIFAR-100: `train.bin` and `test.bin`, records of a coarse label byte, a fine label
 * byte, then the same 3072 pixel bytes.
 *
 * These functions take bytes ({@link DataFile}, or {@link LazyDataFile} to hold one file in memory at
 * a time); `data/files.ts` reads the files from a folder in Deno (`loadCifar10`, `loadCifar100`).
 * @module
 */

import type { DataFile, Dataset, LazyDataFile } from "./dataset.ts";

/** Pixel bytes per CIFAR image (3×32×32). */
export const CIFAR_IMAGE_BYTES: number = 3072;
/** Bytes per CIFAR-10 record (label + image). */
export const CIFAR10_RECORD_BYTES: number = 1 + CIFAR_IMAGE_BYTES;
/** Bytes per CIFAR-100 record (coarse label + fine label + image). */
export const CIFAR100_RECORD_BYTES: number = 2 + CIFAR_IMAGE_BYTES;

/** The CIFAR-10 class names, in label order. */
export const CIFAR10_CLASSES: readonly string[] = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
];

/** The file names of a CIFAR-10 split, in load order. */
export function cifar10Files(split: "train" | "test"): string[] {
  if (split === "train") return [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
  if (split === "test") return ["test_batch.bin"];
  throw new Error(`CIFAR-10: split must be 'train' or 'test', got ${JSON.stringify(split)}`);
}

/** The per-label validation layout of one record format. */
type LabelField = { offset: number; numClasses: number; what: string };

/**
 * Checks the size of a CIFAR file and every label byte; throws an error naming the file,
 * the record index and the byte offset of the first problem.
 */
function validateRecords(bytes: Uint8Array, file: string, recordBytes: number, fields: LabelField[]): number {
  if (bytes.length === 0) throw new Error(`${file}: empty file (expected records of ${recordBytes} bytes)`);
  const n = Math.floor(bytes.length / recordBytes);
  if (bytes.length % recordBytes !== 0) {
    throw new Error(
      `${file}: truncated record ${n} at byte ${n * recordBytes} (file has ${bytes.length} bytes, ` +
        `record size ${recordBytes}; ${bytes.length % recordBytes} bytes left over after ${n} whole records)`,
    );
  }
  for (let i = 0; i < n; i++) {
    for (const f of fields) {
      const off = i * recordBytes + f.offset;
      const v = bytes[off];
      if (v >= f.numClasses) {
        throw new Error(
          `${file}: record ${i} at byte ${off}: ${f.what} ${v} out of range 0..${f.numClasses - 1}`,
        );
      }
    }
  }
  return n;
}

/**
 * Parses the bytes of one CIFAR-10 batch file. `file` is used in error messages only.
 * Returns CHW images and labels.
 */
export function parseCifar10Batch(
  bytes: Uint8Array,
  file = "<bytes>",
): { images: Uint8Array; labels: Int32Array } {
  const n = validateRecords(bytes, file, CIFAR10_RECORD_BYTES, [{
    offset: 0,
    numClasses: 10,
    what: "label",
  }]);
  const images = new Uint8Array(n * CIFAR_IMAGE_BYTES);
  const labels = new Int32Array(n);
  copyRecords(bytes, n, CIFAR10_RECORD_BYTES, 0, images, labels, 0);
  return { images, labels };
}

/**
 * Parses the bytes of one CIFAR-100 file. `file` is used in error messages only.
 * Returns CHW images, coarse (0..19) and fine (0..99) labels.
 */
export function parseCifar100File(
  bytes: Uint8Array,
  file = "<bytes>",
): { images: Uint8Array; coarse: Int32Array; fine: Int32Array } {
  const n = validateRecords(bytes, file, CIFAR100_RECORD_BYTES, [
    { offset: 0, numClasses: 20, what: "coarse label" },
    { offset: 1, numClasses: 100, what: "fine label" },
  ]);
  const images = new Uint8Array(n * CIFAR_IMAGE_BYTES);
  const coarse = new Int32Array(n), fine = new Int32Array(n);
  copyRecords(bytes, n, CIFAR100_RECORD_BYTES, 0, images, coarse, 0);
  for (let i = 0; i < n; i++) fine[i] = bytes[i * CIFAR100_RECORD_BYTES + 1];
  return { images, coarse, fine };
}

function copyRecords(
  bytes: Uint8Array,
  n: number,
  recordBytes: number,
  labelOffset: number,
  images: Uint8Array,
  labels: Int32Array,
  start: number,
): void {
  const pix = recordBytes - CIFAR_IMAGE_BYTES;
  for (let i = 0; i < n; i++) {
    const r = i * recordBytes;
    labels[start + i] = bytes[r + labelOffset];
    images.set(bytes.subarray(r + pix, r + recordBytes), (start + i) * CIFAR_IMAGE_BYTES);
  }
}

/** A CIFAR binary file: its bytes, or its size and a way to read it (see {@link LazyDataFile}). */
export type CifarFile = DataFile | LazyDataFile;

/**
 * Parses a class-names file (one name a line, as `batches.meta.txt`, `fine_label_names.txt`);
 * returns undefined unless it holds exactly `count` names.
 */
export function parseClassNames(text: string, count: number): string[] | undefined {
  const names = text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s !== "");
  return names.length === count ? names : undefined;
}

function checkSplit(dataset: string, split: string): void {
  if (split !== "train" && split !== "test") {
    throw new Error(`${dataset}: split must be 'train' or 'test', got ${JSON.stringify(split)}`);
  }
}

function checkClassNames(
  dataset: string,
  names: readonly string[] | undefined,
  count: number,
): string[] | undefined {
  if (names === undefined) return undefined;
  if (names.length !== count) {
    throw new Error(`${dataset}: ${names.length} class names given for ${count} classes`);
  }
  return [...names];
}

/** Reads several record files into one dataset; lazy files keep peak memory near the final size. */
async function readRecordFiles(
  files: readonly CifarFile[],
  recordBytes: number,
  fields: LabelField[],
  labelOffset: number,
): Promise<{ images: Uint8Array; labels: Int32Array; n: number }> {
  let total = 0;
  for (const f of files) total += Math.floor(("bytes" in f ? f.bytes.length : f.size) / recordBytes);
  const images = new Uint8Array(total * CIFAR_IMAGE_BYTES);
  const labels = new Int32Array(total);
  let start = 0;
  for (const f of files) {
    const bytes = "bytes" in f ? f.bytes : await f.read();
    const n = validateRecords(bytes, f.file, recordBytes, fields);
    if (start + n > total) throw new Error(`${f.file}: file grew while loading`);
    copyRecords(bytes, n, recordBytes, labelOffset, images, labels, start);
    start += n;
  }
  if (start !== total) {
    throw new Error(
      `${
        files.map((f) => f.file).join(", ")
      }: files changed while loading (${start} records, expected ${total})`,
    );
  }
  return { images, labels, n: total };
}

/** Options of {@link cifar10Dataset} and {@link cifar100Dataset}. */
export type CifarDatasetOptions = {
  /** Class names in label order (default: {@link CIFAR10_CLASSES} for CIFAR-10, none for CIFAR-100). */
  classNames?: readonly string[];
};

/**
 * Decodes a CIFAR-10 split from the binary files' bytes (for `"train"` usually
 * `data_batch_1.bin` … `data_batch_5.bin` in that order, for `"test"` `test_batch.bin`: see
 * {@link cifar10Files}). Errors name the file and, for malformed data, the record and byte offset.
 */
export async function cifar10Dataset(
  split: "train" | "test",
  files: readonly CifarFile[],
  opts: CifarDatasetOptions = {},
): Promise<Dataset> {
  checkSplit("CIFAR-10", split);
  const classNames = checkClassNames("CIFAR-10", opts.classNames, 10) ?? [...CIFAR10_CLASSES];
  const { images, labels, n } = await readRecordFiles(
    files,
    CIFAR10_RECORD_BYTES,
    [{ offset: 0, numClasses: 10, what: "label" }],
    0,
  );
  return {
    name: `cifar10-${split}`,
    images,
    labels,
    n,
    channels: 3,
    height: 32,
    width: 32,
    numClasses: 10,
    classNames,
  };
}

/** Options of {@link cifar100Dataset} (and of `loadCifar100` in `data/files.ts`). */
export type Cifar100Options = {
  /** Which label to use: the 100 fine classes (default) or the 20 coarse superclasses. */
  labelKind?: "fine" | "coarse";
};

/**
 * Decodes a CIFAR-100 split from the bytes of its binary file (`train.bin` or `test.bin`). Uses the
 * fine labels (100 classes) unless `labelKind: "coarse"` (20 classes). Both label bytes are
 * validated either way.
 */
export async function cifar100Dataset(
  split: "train" | "test",
  file: CifarFile,
  opts: Cifar100Options & CifarDatasetOptions = {},
): Promise<Dataset> {
  checkSplit("CIFAR-100", split);
  const kind = opts.labelKind ?? "fine";
  if (kind !== "fine" && kind !== "coarse") throw new Error(`CIFAR-100: unknown labelKind ${kind}`);
  const numClasses = kind === "fine" ? 100 : 20;
  const classNames = checkClassNames("CIFAR-100", opts.classNames, numClasses);
  const { images, labels, n } = await readRecordFiles(
    [file],
    CIFAR100_RECORD_BYTES,
    [
      { offset: 0, numClasses: 20, what: "coarse label" },
      { offset: 1, numClasses: 100, what: "fine label" },
    ],
    kind === "fine" ? 1 : 0,
  );
  const ds: Dataset = {
    name: `cifar100-${kind}-${split}`,
    images,
    labels,
    n,
    channels: 3,
    height: 32,
    width: 32,
    numClasses,
  };
  if (classNames) ds.classNames = classNames;
  return ds;
}
