/**
 * CPU side of the datasets: loaders for CIFAR-10/100 (binary) and (Fashion-)MNIST (idx),
 * a synthetic dataset, seeded samplers and label corruption.
 * @module
 */

export type { ChannelStats, Dataset } from "./dataset.ts";
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
export type { Cifar100Options } from "./cifar.ts";
export {
  CIFAR100_RECORD_BYTES,
  CIFAR10_CLASSES,
  CIFAR10_RECORD_BYTES,
  cifar10Files,
  CIFAR_IMAGE_BYTES,
  loadCifar10,
  loadCifar100,
  parseCifar100File,
  parseCifar10Batch,
} from "./cifar.ts";
export type { FashionMnistPaths, IdxArray, IdxDatasetOptions } from "./idx.ts";
export {
  DEBIAN_FASHION_MNIST_DIR,
  FASHION_MNIST_CLASSES,
  findFashionMnist,
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  isGzip,
  loadFashionMnist,
  loadIdxDataset,
  maybeGunzip,
  parseIdx,
  readIdx,
} from "./idx.ts";
export type { BatchSampler, RngState, SamplerState } from "./sampler.ts";
export { EpochSampler, IidSampler, makeSampler, Rng } from "./sampler.ts";
export type { CorruptionResult } from "./corruption.ts";
export { corruptionCount, corruptLabels } from "./corruption.ts";
export type { IdxWriteOptions, SyntheticOptions } from "./synthetic.ts";
export {
  encodeCifar100File,
  encodeCifar10Batch,
  encodeIdx,
  syntheticDataset,
  writeCifar100File,
  writeCifar10Batch,
  writeIdx,
} from "./synthetic.ts";
