/**
 * The data of a Section 5 run, on the host: the training and test sets of a config, its balanced
 * training subset, test subset and label corruption (all seeded by the run seed), and the
 * normalisation statistics.
 * @module
 */
import { channelMeanStd, type ChannelStats, type Dataset } from "../../data/dataset.ts";
import { balancedSubset, firstN } from "../../data/dataset.ts";
import { loadCifar10, loadCifar100, loadFashionMnist } from "../../data/files.ts";
import { syntheticDataset } from "../../data/synthetic.ts";
import { corruptLabels } from "../../data/corruption.ts";
import { padDataset } from "../../train/data_gpu.ts";
import { ConfigError, defaultDataPath, type TrainConfig } from "./config.ts";

/** A seed for a named purpose derived from the run seed (FNV-1a of "seed:tag"). */
export function deriveSeed(seed: number, tag: string): number {
  let h = 0x811c9dc5;
  for (const ch of `${seed}:${tag}`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The datasets of a run, on the host. */
export interface PreparedData {
  /** Training set (after the subset), with its original labels. */
  train: Dataset;
  /** Test set (after the subset). */
  test: Dataset;
  /** Training labels as trained on (after corruption). */
  labels: Int32Array;
  /** Indices of the corrupted training labels (ascending). */
  corruptedIndices: Int32Array;
  /** Per-channel mean/std of the training images. */
  stats: ChannelStats;
}

/**
 * Loads the training and test sets of a config, applies the balanced training subset, the test
 * subset and the label corruption (all seeded by `config.seed`), and computes the normalisation
 * statistics of the training images. Fashion-MNIST is zero-padded to 32×32.
 */
export async function prepareData(config: TrainConfig): Promise<PreparedData> {
  let train: Dataset, test: Dataset;
  const dir = config.data || defaultDataPath(config.dataset);
  switch (config.dataset) {
    case "synthetic": {
      // One stream so both splits share the class definitions; the data do not depend on --seed.
      const all = syntheticDataset({
        n: config.syntheticN + config.syntheticTestN,
        numClasses: config.syntheticClasses,
        height: config.syntheticSize,
        width: config.syntheticSize,
        seed: 0,
      });
      const sz = all.channels * all.height * all.width;
      const n = config.syntheticN;
      train = {
        ...all,
        name: `${all.name}-train`,
        images: all.images.slice(0, n * sz),
        labels: all.labels.slice(0, n),
        n,
      };
      test = {
        ...all,
        name: `${all.name}-test`,
        images: all.images.slice(n * sz),
        labels: all.labels.slice(n),
        n: config.syntheticTestN,
      };
      break;
    }
    case "cifar10":
      [train, test] = await Promise.all([loadCifar10(dir, "train"), loadCifar10(dir, "test")]);
      break;
    case "cifar100":
      [train, test] = await Promise.all([loadCifar100(dir, "train"), loadCifar100(dir, "test")]);
      break;
    case "fashion-mnist":
      [train, test] = await Promise.all([loadFashionMnist("train", dir), loadFashionMnist("test", dir)]);
      train = padDataset(train, 32);
      test = padDataset(test, 32);
      break;
    default:
      throw new ConfigError(`unknown dataset ${config.dataset}`);
  }
  if (config.trainSubset > 0 && config.trainSubset < train.n) {
    const perClass = Math.floor(config.trainSubset / train.numClasses);
    if (perClass < 1) {
      throw new ConfigError(
        `--train-subset ${config.trainSubset} is smaller than the ${train.numClasses} classes`,
      );
    }
    train = balancedSubset(train, perClass, deriveSeed(config.seed, "subset"));
  }
  if (config.testSubset > 0) test = firstN(test, config.testSubset);
  let labels: Int32Array = Int32Array.from(train.labels);
  let corruptedIndices: Int32Array = new Int32Array(0);
  if (config.corruption > 0) {
    const r = corruptLabels(
      train.labels,
      train.numClasses,
      config.corruption,
      deriveSeed(config.seed, "corruption"),
      config.corruptionMode,
    );
    labels = r.labels;
    corruptedIndices = r.corruptedIndices;
  }
  return { train, test, labels, corruptedIndices, stats: channelMeanStd(train) };
}
