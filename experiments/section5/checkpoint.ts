/**
 * Checkpoints of Section 5 runs: a `train/` checkpoint (safetensors, written atomically; see
 * train/checkpoint.ts) of the run's whole `TrainState` —
 *
 * - the encoder's parameters and BatchNorm buffers under their PyTorch names (`conv1.weight`,
 *   `layer1.0.bn1.running_mean`, …, plus an I64 `num_batches_tracked` per BatchNorm), so
 *   `model.load_state_dict(safetensors.torch.load_file(path), strict=False)` loads them;
 * - the classifier as `classifier.weight` (CE, CE-fix) and, after an SC run, the probe as `probe.weight`;
 * - SGD momentum buffers as `optimizer.momentum.<parameter name>`;
 * - `__metadata__`: `format`, `step`, `config` (JSON), `config_hash`, `data` (JSON: classes, image shape,
 *   training-set size) and `state` (JSON: sampler and augmentation RNG states, optimiser step count, the
 *   number of metrics.csv rows), everything a resumed run needs to continue exactly.
 * @module
 */
import { initDevice } from "../../engine/gpu.ts";
import type { SamplerState } from "../../data/sampler.ts";
import type { RngState } from "../../data/sampler.ts";
import type { Tensor as StTensor } from "../../train/safetensors.ts";
import {
  MOMENTUM_PREFIX,
  momentumTensors,
  parseMetadataJson,
  readCheckpointFile,
  stateDictFrom as trainStateDictFrom,
} from "../../train/checkpoint.ts";
import type { MetricsState } from "../../train/state.ts";
import { ResNet18 } from "../../models/resnet.ts";
import { LinearClassifier, SimplexClassifier } from "../../models/classifier.ts";
import { defaultTrainConfig, type TrainConfig } from "./config.ts";
import type { EvalMetrics } from "./types.ts";

export { MOMENTUM_PREFIX, momentumFor, readTensors } from "../../train/checkpoint.ts";

/** The `format` metadata value of these checkpoints. */
export const CHECKPOINT_FORMAT = "dissecting-supcon/section5-train/1";
/** Prefix of the classifier's tensors. */
export const CLASSIFIER_PREFIX = "classifier.";
/** Prefix of the SC linear probe's tensors. */
export const PROBE_PREFIX = "probe.";

/** Shape facts about the data a model was built for. */
export interface DataInfo {
  /** Number of classes K. */
  numClasses: number;
  /** Image channels. */
  channels: number;
  /** Image height. */
  height: number;
  /** Image width. */
  width: number;
  /** Training-set size (after the subset). */
  nTrain: number;
}

/** Everything besides tensors that a resumed run restores (the `state` entry of a checkpoint). */
export interface RunState extends MetricsState {
  /** Sampler state (indices of the next batches). */
  sampler: SamplerState;
  /** Generator of the augmentation parameters. */
  augRng: RngState;
  /** Optimiser steps taken (the momentum "first step" flag derives from it). */
  optimizerSteps: number;
}

/** Metadata of a checkpoint, parsed. */
export interface CheckpointMeta {
  /** Completed training iterations. */
  step: number;
  /** The run's configuration. */
  config: TrainConfig;
  /** Hash of the configuration (see `configHash`). */
  configHash: string;
  /** Data shape facts. */
  data: DataInfo;
  /** Resumable state. */
  state: RunState;
  /** True when this is the final checkpoint of a completed run. */
  final: boolean;
  /** The final evaluation (final checkpoints of completed runs). */
  evaluation?: EvalMetrics | null;
}

/** The encoder plus its heads. */
export interface Network {
  /** The ResNet-18 encoder. */
  model: ResNet18;
  /** Trainable linear classifier (CE), the fixed simplex one (CE-fix), or null (SC). */
  classifier: LinearClassifier | SimplexClassifier | null;
}

/** Builds the encoder and classifier of a config (weights initialised from `config.seed`). */
export function buildNetwork(config: TrainConfig, data: DataInfo): Network {
  const model = new ResNet18({
    variant: config.model === "preact-resnet18" ? "preact" : "standard",
    width: config.width,
    inChannels: data.channels,
    seed: config.seed,
  });
  let classifier: LinearClassifier | SimplexClassifier | null = null;
  if (config.loss === "ce") {
    classifier = new LinearClassifier(model.featureDim, data.numClasses, {
      bias: false,
      seed: config.seed + 1,
    });
  } else if (config.loss === "ce-fix") {
    classifier = new SimplexClassifier(model.featureDim, data.numClasses, 1);
  }
  return { model, classifier };
}

/** A checkpoint file read from disk (no GPU needed). */
export interface RawCheckpoint {
  /** Parsed metadata. */
  meta: CheckpointMeta;
  /** Every tensor by name. */
  tensors: Record<string, StTensor>;
}

/** The metadata strings of a Section 5 checkpoint besides `format`, `step`, `state` and `final`. */
export function checkpointMetadata(
  config: TrainConfig,
  hash: string,
  data: DataInfo,
): Record<string, string> {
  return { config: JSON.stringify(config), config_hash: hash, data: JSON.stringify(data) };
}

/**
 * Reads and verifies a checkpoint file and parses its metadata (no GPU needed); `requireChecksum`
 * refuses files without a checksum (a resume does; older files and other tools' have none).
 */
export async function readCheckpoint(
  path: string,
  options: { requireChecksum?: boolean } = {},
): Promise<RawCheckpoint> {
  const file = await readCheckpointFile(path, CHECKPOINT_FORMAT, "Section 5", options);
  const md = file.metadata;
  const meta: CheckpointMeta = {
    step: file.step,
    config: { ...defaultTrainConfig, ...parseMetadataJson<TrainConfig>(path, "config", md.config) },
    configHash: md.config_hash ?? "",
    data: parseMetadataJson<DataInfo>(path, "data", md.data),
    state: file.state as RunState,
    final: file.final,
    evaluation: md.evaluation ? parseMetadataJson<EvalMetrics>(path, "evaluation", md.evaluation) : null,
  };
  return { meta, tensors: file.tensors };
}

/** Entries of `tensors` under `prefix`, with the prefix removed, as a state dict (F32 only). */
export function stateDictFrom(
  tensors: Record<string, StTensor>,
  prefix = "",
  exclude: readonly string[] = [MOMENTUM_PREFIX, CLASSIFIER_PREFIX, PROBE_PREFIX],
): Record<string, { shape: number[]; data: Float32Array }> {
  return trainStateDictFrom(tensors, prefix, exclude);
}

/** A checkpoint loaded onto the GPU (see {@link loadCheckpoint}). */
export interface LoadedCheckpoint {
  /** The run's configuration. */
  config: TrainConfig;
  /** Completed training iterations. */
  step: number;
  /** The encoder with the checkpoint's weights and BN statistics (in eval mode). */
  model: ResNet18;
  /** The classifier (CE: trained; CE-fix: the simplex), or null for SC. */
  classifier: LinearClassifier | SimplexClassifier | null;
  /** The SC linear probe, when the checkpoint has one. */
  probe: LinearClassifier | null;
  /** Momentum buffers by parameter name (host copies). */
  momentum: Record<string, Float32Array>;
  /** All metadata. */
  meta: CheckpointMeta;
  /** Every tensor of the file (host copies). */
  tensors: Record<string, StTensor>;
}

/**
 * Loads a checkpoint: initialises the device if needed, builds the encoder and classifier from the
 * stored config and loads the weights (strictly: every model tensor must be present). The model is
 * returned in eval mode. The caller owns (and disposes) the modules.
 */
export async function loadCheckpoint(path: string): Promise<LoadedCheckpoint> {
  await initDevice();
  const raw = await readCheckpoint(path);
  const { meta, tensors } = raw;
  const { model, classifier } = buildNetwork(meta.config, meta.data);
  try {
    model.loadStateDict(stateDictFrom(tensors));
    if (classifier) classifier.loadStateDict(stateDictFrom(tensors, CLASSIFIER_PREFIX));
  } catch (e) {
    model.dispose();
    classifier?.dispose();
    throw new Error(`${path}: ${(e as Error).message}`, { cause: e });
  }
  let probe: LinearClassifier | null = null;
  const probeDict = stateDictFrom(tensors, PROBE_PREFIX);
  if (probeDict.weight) {
    probe = new LinearClassifier(model.featureDim, meta.data.numClasses, { bias: false });
    probe.loadStateDict(probeDict);
  }
  const momentum = momentumTensors(tensors);
  model.eval();
  return { config: meta.config, step: meta.step, model, classifier, probe, momentum, meta, tensors };
}
