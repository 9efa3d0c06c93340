/**
 * CPU side of the datasets: decoders for CIFAR-10/100 (binary) and (Fashion-)MNIST (idx, gzipped or
 * not), a synthetic dataset, seeded samplers and label corruption.
 *
 * Web-standard: the decoders take bytes ({@link DataFile}), however they were obtained (`fetch`, a
 * file input). In Deno, `data/files.ts` (not exported here) reads them from a folder:
 * `loadCifar10`, `loadCifar100`, `loadFashionMnist`, `loadIdxDataset`, `readIdx`, and writes them.
 * @module
 */

export type { ChannelStats, DataFile, Dataset, LazyDataFile } from "./dataset.ts";
export {
  balancedIndices,
  balancedSubset,
  channelMeanStd,
  classCounts,
  firstN,
  imageSize,
  subset,
  validateDataset,
} from "./dataset.ts";
export type { Cifar100Options, CifarDatasetOptions, CifarFile } from "./cifar.ts";
export {
  CIFAR100_RECORD_BYTES,
  cifar100Dataset,
  CIFAR10_CLASSES,
  CIFAR10_RECORD_BYTES,
  cifar10Dataset,
  cifar10Files,
  CIFAR_IMAGE_BYTES,
  parseCifar100File,
  parseCifar10Batch,
  parseClassNames,
} from "./cifar.ts";
export { gunzip, gzip, isGzip } from "./gzip.ts";
export type { IdxArray, IdxDatasetOptions } from "./idx.ts";
export {
  decodeIdx,
  FASHION_MNIST_CLASSES,
  fashionMnistDataset,
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  idxDataset,
  maybeGunzip,
  parseIdx,
} from "./idx.ts";
export type { BatchSampler, RngState, SamplerState } from "./sampler.ts";
export { EpochSampler, IidSampler, makeSampler, Rng } from "./sampler.ts";
export type { CorruptionResult } from "./corruption.ts";
export { corruptionCount, corruptLabels } from "./corruption.ts";
export type { SyntheticOptions } from "./synthetic.ts";
export { encodeCifar100File, encodeCifar10Batch, encodeIdx, syntheticDataset } from "./synthetic.ts";
