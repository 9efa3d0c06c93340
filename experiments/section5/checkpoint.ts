/**
 * Checkpoints of Section 5 runs, in safetensors format (written atomically):
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
import { gpu, initDevice } from "../../engine/gpu.ts";
import { empty, type Tensor } from "../../engine/tensor.ts";
import type { SamplerState } from "../../data/sampler.ts";
import type { RngState } from "../../data/sampler.ts";
import { loadSafetensors, saveSafetensors, type Tensor as StTensor } from "../lib/safetensors.ts";
import { ResNet18 } from "../../models/resnet.ts";
import { LinearClassifier, SimplexClassifier } from "../../models/classifier.ts";
import type { Module } from "../../models/module.ts";
import type { SGD } from "../../engine/optim/sgd.ts";
import { defaultTrainConfig, type TrainConfig } from "./config.ts";

/** The `format` metadata value of these checkpoints. */
export const CHECKPOINT_FORMAT = "dissecting-supcon/section5-train/1";
/** Prefix of momentum buffers in a checkpoint. */
export const MOMENTUM_PREFIX = "optimizer.momentum.";
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

/** Everything besides tensors that a resumed run restores. */
export interface TrainState {
  /** Sampler state (indices of the next batches). */
  sampler: SamplerState;
  /** Generator of the augmentation parameters. */
  augRng: RngState;
  /** Optimiser steps taken (the momentum "first step" flag derives from it). */
  optimizerSteps: number;
  /** Data rows of metrics.csv written up to this checkpoint. */
  csvRows: number;
  /** Wall-clock seconds of training so far (informational only; never affects the trajectory). */
  elapsedSeconds: number;
  /** Step of the last metrics row with a loss. */
  lastLogStep: number;
  /** Batch losses of the steps after `lastLogStep` (float32 values), for the next row's mean. */
  pendingLosses: number[];
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
  state: TrainState;
  /** True when this is the final checkpoint of a completed run. */
  final: boolean;
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

/**
 * Reads many tensors back with ONE readback: records copies into a staging tensor, then reads it.
 * Returns a copy of each tensor's values (in order).
 */
export async function readTensors(tensors: readonly Tensor[]): Promise<Float32Array[]> {
  const total = tensors.reduce((s, t) => s + t.size, 0);
  if (total === 0) return tensors.map(() => new Float32Array(0));
  const staging = empty([total]);
  try {
    let offset = 0;
    for (const t of tensors) {
      if (t.size > 0) {
        const src = { ...t.range, size: t.size * 4 };
        gpu().copy(src, {
          buffer: staging.range.buffer,
          offset: staging.range.offset + offset * 4,
          size: t.size * 4,
        });
      }
      offset += t.size;
    }
    const all = new Float32Array(await gpu().read(staging.range), 0, total);
    const out: Float32Array[] = [];
    offset = 0;
    for (const t of tensors) {
      out.push(all.slice(offset, offset + t.size));
      offset += t.size;
    }
    return out;
  } finally {
    staging.dispose();
  }
}

/** What {@link saveCheckpoint} writes. */
export interface SaveCheckpointInput {
  /** Encoder. */
  model: Module;
  /** Classifier (CE, CE-fix), if any. */
  classifier?: Module | null;
  /** SC linear probe, if trained. */
  probe?: Module | null;
  /** Optimiser whose momentum buffers to save, with the names of its parameters (in its order), if any. */
  optimizer?: { sgd: SGD; names: readonly string[] } | null;
  /** Metadata. */
  meta: CheckpointMeta;
}

/** The tensors and metadata of a checkpoint, or null when some value is not finite (nothing to save). */
export interface CheckpointPayload {
  /** Tensors by name. */
  tensors: Record<string, StTensor>;
  /** Metadata strings. */
  metadata: Record<string, string>;
  /** Names of tensors holding NaN or ±Infinity (the payload must not be written then). */
  nonFinite: string[];
}

/** Reads every tensor of a checkpoint back (one readback) and assembles the payload. */
export async function checkpointPayload(input: SaveCheckpointInput): Promise<CheckpointPayload> {
  const named: [string, Tensor][] = [];
  for (const [n, t] of input.model.namedTensors()) named.push([n, t]);
  for (const [n, t] of input.classifier?.namedTensors() ?? []) named.push([CLASSIFIER_PREFIX + n, t]);
  for (const [n, t] of input.probe?.namedTensors() ?? []) named.push([PROBE_PREFIX + n, t]);
  const opt = input.optimizer;
  if (opt && opt.sgd.momentumBuffers.length) {
    if (opt.names.length !== opt.sgd.params.length) {
      throw new Error(
        `checkpoint: ${opt.names.length} names for ${opt.sgd.params.length} optimiser parameters`,
      );
    }
    opt.sgd.momentumBuffers.forEach((b, k) => named.push([MOMENTUM_PREFIX + opt.names[k], b]));
  }
  const values = await readTensors(named.map(([, t]) => t));
  const tensors: Record<string, StTensor> = {};
  const nonFinite: string[] = [];
  named.forEach(([name, t], k) => {
    const data = values[k];
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        nonFinite.push(name);
        break;
      }
    }
    if (name in tensors) throw new Error(`checkpoint: tensor name "${name}" occurs twice`);
    tensors[name] = { dtype: "F32", shape: [...t.shape], data };
  });
  // PyTorch's BatchNorm2d also has a num_batches_tracked buffer (I64 scalar).
  for (const name of Object.keys(tensors)) {
    if (!name.endsWith(".running_mean") || name.startsWith(MOMENTUM_PREFIX)) continue;
    const key = name.slice(0, -".running_mean".length) + ".num_batches_tracked";
    tensors[key] = { dtype: "I64", shape: [], data: BigInt64Array.of(BigInt(input.meta.step)) };
  }
  const m = input.meta;
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    step: String(m.step),
    config: JSON.stringify(m.config),
    config_hash: m.configHash,
    data: JSON.stringify(m.data),
    state: JSON.stringify(m.state),
    final: String(m.final),
  };
  return { tensors, metadata, nonFinite };
}

/** Thrown when a checkpoint would contain NaN or infinite values (it is then not written). */
export class NonFiniteCheckpointError extends Error {
  /** The error naming the tensors with non-finite values. */
  constructor(readonly names: string[]) {
    super(
      `checkpoint not written: non-finite values in ${names.slice(0, 5).join(", ")}${
        names.length > 5 ? ", …" : ""
      }`,
    );
    this.name = "NonFiniteCheckpointError";
  }
}

/**
 * Writes a checkpoint atomically to `path`. Refuses (throws {@link NonFiniteCheckpointError}, leaving
 * any existing file untouched) when a value is NaN or infinite.
 */
export async function saveCheckpoint(path: string, input: SaveCheckpointInput): Promise<void> {
  const payload = await checkpointPayload(input);
  if (payload.nonFinite.length) throw new NonFiniteCheckpointError(payload.nonFinite);
  await saveSafetensors(path, payload.tensors, payload.metadata);
}

/** A checkpoint file read from disk (no GPU needed). */
export interface RawCheckpoint {
  /** Parsed metadata. */
  meta: CheckpointMeta;
  /** Every tensor by name. */
  tensors: Record<string, StTensor>;
}

function parseJson<T>(path: string, key: string, text: string | undefined): T {
  if (text === undefined) throw new Error(`${path}: checkpoint metadata has no "${key}"`);
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${path}: checkpoint metadata "${key}" is not valid JSON: ${(e as Error).message}`);
  }
}

/** Reads a checkpoint file and parses its metadata (no GPU needed). */
export async function readCheckpoint(path: string): Promise<RawCheckpoint> {
  const file = await loadSafetensors(path);
  const md = file.metadata;
  if (md.format !== CHECKPOINT_FORMAT) {
    throw new Error(
      `${path}: not a Section 5 checkpoint (format ${
        JSON.stringify(md.format)
      }, expected ${CHECKPOINT_FORMAT})`,
    );
  }
  const step = Number(md.step);
  if (!Number.isInteger(step) || step < 0) {
    throw new Error(`${path}: bad step ${JSON.stringify(md.step)} in metadata`);
  }
  const meta: CheckpointMeta = {
    step,
    config: { ...defaultTrainConfig, ...parseJson<TrainConfig>(path, "config", md.config) },
    configHash: md.config_hash ?? "",
    data: parseJson<DataInfo>(path, "data", md.data),
    state: parseJson<TrainState>(path, "state", md.state),
    final: md.final === "true",
  };
  return { meta, tensors: file.tensors };
}

/** Entries of `tensors` under `prefix`, with the prefix removed, as a state dict (F32 only). */
export function stateDictFrom(
  tensors: Record<string, StTensor>,
  prefix = "",
  exclude: readonly string[] = [MOMENTUM_PREFIX, CLASSIFIER_PREFIX, PROBE_PREFIX],
): Record<string, { shape: number[]; data: Float32Array }> {
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (!name.startsWith(prefix)) continue;
    if (prefix === "" && exclude.some((p) => name.startsWith(p))) continue;
    if (t.dtype !== "F32") continue; // num_batches_tracked
    out[name.slice(prefix.length)] = { shape: t.shape, data: t.data as Float32Array };
  }
  return out;
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
  const momentum: Record<string, Float32Array> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (name.startsWith(MOMENTUM_PREFIX)) {
      momentum[name.slice(MOMENTUM_PREFIX.length)] = t.data as Float32Array;
    }
  }
  model.eval();
  return { config: meta.config, step: meta.step, model, classifier, probe, momentum, meta, tensors };
}

/**
 * Momentum buffers for an optimiser whose parameters are `names` (in its order), from the host copies
 * of a loaded checkpoint; throws naming a missing or mis-sized buffer.
 */
export function momentumFor(
  optimizer: SGD,
  names: readonly string[],
  momentum: Record<string, Float32Array>,
): Float32Array[] {
  return optimizer.params.map((p, k) => {
    const name = names[k];
    const m = momentum[name];
    if (!m) throw new Error(`checkpoint: no momentum buffer ${MOMENTUM_PREFIX}${name}`);
    if (m.length !== p.size) {
      throw new Error(`checkpoint: momentum ${name} has ${m.length} values for ${p.size}`);
    }
    return m;
  });
}
