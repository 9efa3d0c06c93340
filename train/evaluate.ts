/**
 * Evaluation: predictions and error rates of an encoder + linear head on a GPU-resident dataset,
 * feature extraction, and a linear probe trained on a frozen encoder.
 *
 * Every loop uses one fixed batch size (the last batch is padded with index 0 and the padding
 * ignored), so each kernel compiles once; results accumulate on the GPU and are read back once.
 * The encoder runs in eval mode (BatchNorm with running statistics) and without autograd; its mode is
 * restored afterwards. Augmented evaluation (the training transform: crop and flip) draws its crop
 * and flip parameters from a seeded generator, so it is reproducible.
 * @module
 */
import { gpu } from "../engine/gpu.ts";
import { empty, type Tensor, tensor } from "../engine/tensor.ts";
import { noGrad } from "../engine/autograd.ts";
import { tidy } from "../engine/scope.ts";
import { argmax, gatherRows } from "../engine/ops/shape.ts";
import { crossEntropy, normalizeToSphere } from "../engine/ops/loss.ts";
import { SGD } from "../engine/optim/sgd.ts";
import { polynomialLr } from "../engine/optim/schedule.ts";
import { IidSampler, Rng } from "../data/sampler.ts";
import { LinearClassifier } from "../models/classifier.ts";
import { BatchBuffers, type GpuDataset } from "./data_gpu.ts";
import { Throttle } from "../engine/throttle.ts";

/** An encoder: images [N, C, H, W] → features [N, featureDim], with a train/eval switch. */
export interface Encoder {
  /** Feature dimension. */
  readonly featureDim: number;
  /** True in training mode. */
  readonly training: boolean;
  /** Sets training mode. */
  train(mode?: boolean): unknown;
  /** Features of a batch. */
  forward(x: Tensor): Tensor;
}

/**
 * An SC encoder as it is used downstream: outputs projected to the sphere of radius ρ
 * (z = ρ·u/‖u‖, ρ = 1/√τ), so the linear probe is trained on and evaluated with z, not u.
 */
export function sphereEncoder(model: Encoder, radius: number): Encoder {
  return {
    get featureDim() {
      return model.featureDim;
    },
    get training() {
      return model.training;
    },
    train: (mode?: boolean) => model.train(mode),
    forward: (x: Tensor) => normalizeToSphere(model.forward(x), radius),
  };
}

/** A linear head: features → logits [N, K]. */
export interface Head {
  /** Logits of features. */
  forward(features: Tensor): Tensor;
}

/** Options of the evaluation loops. */
export interface EvalOptions {
  /** Apply the training transform (random crop with padding 4 + flip) (default false). */
  augment?: boolean;
  /** Images per batch (default 256). */
  batchSize?: number;
  /** Seed (or generator) of the augmentation parameters (default 0). */
  seed?: number | Rng;
  /** Evaluate only these images (default all, in order). */
  indices?: Int32Array;
  /** Checked between batches: once aborted, the evaluation throws its reason (e.g. a stop request). */
  signal?: AbortSignal;
}

/** Features of a dataset, read back to the host. */
export interface FeatureSet {
  /** Row-major features [n, dim]. */
  features: Float32Array;
  /** The label of each row (the dataset's labels, e.g. corrupted ones for a training set). */
  labels: Int32Array;
  /** Number of rows. */
  n: number;
  /** Feature dimension. */
  dim: number;
}

function seedRng(seed: number | Rng | undefined): Rng {
  return seed instanceof Rng ? seed : new Rng(seed ?? 0);
}

/**
 * Runs `perBatch(x, rows, offset)` over the images of `data` (eval mode, no autograd, inside `tidy`)
 * where x holds `batchSize` assembled images whose first `rows` are real.
 */
async function forEachBatch(
  model: Encoder,
  data: GpuDataset,
  options: EvalOptions,
  perBatch: (features: Tensor, rows: number, offset: number) => void,
): Promise<number> {
  const indices = options.indices ?? Int32Array.from({ length: data.n }, (_, i) => i);
  const n = indices.length;
  const bs = Math.max(1, Math.min(options.batchSize ?? 256, n));
  const rng = options.augment ? seedRng(options.seed) : null;
  const buffers = new BatchBuffers(bs);
  const host = new Int32Array(bs);
  const wasTraining = model.training;
  model.train(false);
  const throttle = new Throttle();
  try {
    for (let start = 0; start < n; start += bs) {
      options.signal?.throwIfAborted();
      const rows = Math.min(bs, n - start);
      host.fill(indices[0]);
      host.set(indices.subarray(start, start + rows));
      buffers.upload(host, rng);
      noGrad(() =>
        tidy(() => {
          const x = data.assemble(buffers.indices, rng ? buffers.params : null);
          perBatch(model.forward(x), rows, start);
        })
      );
      await throttle.tick();
    }
    await throttle.drain();
  } finally {
    model.train(wasTraining);
    buffers.dispose();
  }
  return n;
}

/**
 * Features of every image of `data` (or of `options.indices`) → host [n, featureDim], with the labels
 * of those images. One readback.
 */
export async function extractFeatures(
  model: Encoder,
  data: GpuDataset,
  options: EvalOptions = {},
): Promise<FeatureSet> {
  const n = options.indices?.length ?? data.n;
  const d = model.featureDim;
  const all = empty([Math.max(1, n), d]);
  try {
    await forEachBatch(model, data, options, (f, rows, offset) => {
      const src = f.range;
      gpu().copy(
        { buffer: src.buffer, offset: src.offset, size: rows * d * 4 },
        { buffer: all.range.buffer, offset: all.range.offset + offset * d * 4, size: rows * d * 4 },
      );
    });
    const features = new Float32Array(await gpu().read({ ...all.range, size: n * d * 4 }), 0, n * d);
    const labels = options.indices
      ? Int32Array.from(options.indices, (i) => data.hostLabels[i])
      : Int32Array.from(data.hostLabels);
    return { features, labels, n, dim: d };
  } finally {
    all.dispose();
  }
}

/** Predicted classes (argmax of `head(model(x))`) of every image of `data` (or `options.indices`). */
export async function predict(
  model: Encoder,
  head: Head,
  data: GpuDataset,
  options: EvalOptions = {},
): Promise<Int32Array> {
  const n = options.indices?.length ?? data.n;
  const all = empty([Math.max(1, n)], "i32");
  try {
    await forEachBatch(model, data, options, (f, rows, offset) => {
      const pred = argmax(head.forward(f));
      gpu().copy(
        { buffer: pred.range.buffer, offset: pred.range.offset, size: rows * 4 },
        { buffer: all.range.buffer, offset: all.range.offset + offset * 4, size: rows * 4 },
      );
    });
    return new Int32Array(await gpu().read({ ...all.range, size: n * 4 }), 0, n);
  } finally {
    all.dispose();
  }
}

/** Fraction of `predictions` that differ from `labels`. */
export function errorRate(predictions: ArrayLike<number>, labels: ArrayLike<number>): number {
  if (predictions.length !== labels.length) {
    throw new Error(`errorRate: ${predictions.length} predictions for ${labels.length} labels`);
  }
  if (labels.length === 0) return NaN;
  let wrong = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] !== labels[i]) wrong++;
  return wrong / labels.length;
}

/** Result of {@link evaluateError}. */
export interface ErrorResult {
  /** Error rate w.r.t. `labels` (default: the dataset's labels, e.g. corrupted ones). */
  error: number;
  /** Error rate w.r.t. `cleanLabels`, when given. */
  cleanError?: number;
  /** Images evaluated. */
  n: number;
  /** The predictions. */
  predictions: Int32Array;
}

/**
 * Error rate of `head(model(x))` on `data`. `labels` defaults to the dataset's own labels; pass
 * `cleanLabels` too to get the error w.r.t. the uncorrupted labels.
 */
export async function evaluateError(
  model: Encoder,
  head: Head,
  data: GpuDataset,
  options: EvalOptions & { labels?: ArrayLike<number>; cleanLabels?: ArrayLike<number> } = {},
): Promise<ErrorResult> {
  const predictions = await predict(model, head, data, options);
  const pick = (l: ArrayLike<number>) => options.indices ? Array.from(options.indices, (i) => l[i]) : l;
  const error = errorRate(predictions, pick(options.labels ?? data.hostLabels));
  const result: ErrorResult = { error, n: predictions.length, predictions };
  if (options.cleanLabels) result.cleanError = errorRate(predictions, pick(options.cleanLabels));
  return result;
}

/** Options of {@link trainProbe}. */
export interface ProbeOptions {
  /** Number of classes K. */
  numClasses: number;
  /** SGD iterations T (default 5000). */
  iterations?: number;
  /** Base learning rate (default 0.1). */
  lr?: number;
  /** Weight decay (default 1e-3). */
  weightDecay?: number;
  /** Power p of lr_t = lr·(1 − t/T)^p (default 5). */
  power?: number;
  /** Batch size, drawn i.i.d. with replacement (default 256). */
  batchSize?: number;
  /** Seed of the probe's initialisation, sampler and augmentation (default 0). */
  seed?: number;
  /** Called every `progressEvery` iterations with the iteration count. */
  onProgress?: (iteration: number) => void;
  /** Checked between iterations: once aborted, training throws its reason (e.g. a stop request). */
  signal?: AbortSignal;
}

/** Where the probe's features come from: precomputed features, or an encoder recomputing them. */
export type ProbeSource =
  | FeatureSet
  | {
    /** Frozen encoder (run in eval mode). */
    model: Encoder;
    /** Training images. */
    data: GpuDataset;
    /** Recompute features from augmented images at every iteration (else extract them once). */
    augment: boolean;
    /** Batch size of the one-off extraction (default 256). */
    extractBatchSize?: number;
  };

/** Result of {@link trainProbe}. */
export interface ProbeResult {
  /** The bias-free linear probe (the caller disposes it). */
  probe: LinearClassifier;
  /** Cross-entropy of the last iteration's batch (NaN for 0 iterations). */
  lastLoss: number;
}

/**
 * Trains a bias-free linear probe on frozen features with plain SGD (no momentum), lr_t =
 * lr·(1 − t/T)^p, weight decay, batches drawn i.i.d. with replacement (the SC
 * protocol). From an encoder with `augment`, features are recomputed from freshly augmented images
 * at every iteration (encoder in eval mode); otherwise they are extracted once.
 */
export async function trainProbe(source: ProbeSource, options: ProbeOptions): Promise<ProbeResult> {
  const T = options.iterations ?? 5000;
  const lr0 = options.lr ?? 0.1;
  const power = options.power ?? 5;
  const seed = options.seed ?? 0;
  const bs = options.batchSize ?? 256;
  const K = options.numClasses;

  let fs: FeatureSet | null = null;
  let live: { model: Encoder; data: GpuDataset } | null = null;
  if ("features" in source) fs = source;
  else if (source.augment) live = { model: source.model, data: source.data };
  else {
    fs = await extractFeatures(source.model, source.data, {
      batchSize: source.extractBatchSize ?? 256,
      signal: options.signal,
    });
  }

  const n = fs ? fs.n : live!.data.n;
  const dim = fs ? fs.dim : live!.model.featureDim;
  const probe = new LinearClassifier(dim, K, { bias: false, seed: seed + 7 });
  if (T === 0) return { probe, lastLoss: NaN };
  const features = fs ? tensor(fs.features, [fs.n, fs.dim]) : null;
  const labels = fs ? tensor(fs.labels, [fs.n], { dtype: "i32" }) : null;
  const sgd = new SGD(probe.parameters(), { lr: lr0, momentum: 0, weightDecay: options.weightDecay ?? 1e-3 });
  const rng = new Rng(seed + 0x9e3779b9);
  const sampler = new IidSampler(n, bs, rng.fork());
  const augRng = rng.fork();
  const buffers = new BatchBuffers(bs);
  const host = new Int32Array(bs);
  const lastLoss = empty([1]);
  const wasTraining = live?.model.training ?? false;
  live?.model.train(false);
  const throttle = new Throttle();
  try {
    for (let t = 0; t < T; t++) {
      options.signal?.throwIfAborted();
      sampler.next(host);
      buffers.upload(host, live ? augRng : null);
      const lr = polynomialLr(lr0, t, T, power);
      tidy(() => {
        let f: Tensor, y: Tensor;
        if (live) {
          const { model, data } = live;
          f = noGrad(() => model.forward(data.assemble(buffers.indices, buffers.params)));
          y = data.gatherLabels(buffers.indices);
        } else {
          f = gatherRows(features!, buffers.indices);
          y = gatherRows(labels!, buffers.indices);
        }
        const loss = crossEntropy(probe.forward(f), y);
        sgd.zeroGrad();
        loss.backward();
        sgd.step(lr);
        if (t === T - 1) gpu().copy(loss.range, lastLoss.range);
      });
      await throttle.tick();
      if (options.onProgress) options.onProgress(t + 1);
    }
    await throttle.drain();
    const value = (await lastLoss.toArray())[0];
    return { probe, lastLoss: value };
  } catch (e) {
    probe.dispose();
    throw e;
  } finally {
    live?.model.train(wasTraining);
    sgd.dispose();
    buffers.dispose();
    features?.dispose();
    labels?.dispose();
    lastLoss.dispose();
  }
}
