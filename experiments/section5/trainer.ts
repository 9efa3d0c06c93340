/**
 * Section 5 training: ResNet-18 with CE, CE-fix or SC on a GPU-resident dataset, with checkpoints,
 * exact resume, NaN detection, metrics and the final evaluation (for SC through a linear probe).
 *
 * One step: upload b indices and the augmentation parameters (drawn on the CPU from seeded
 * generators), then record assembly → forward → loss → backward → SGD update → a one-invocation
 * monitor kernel that stores the loss (and the batch accuracy) in a ring buffer and the first step
 * with a non-finite loss; submit. The ring buffer is read back only at log points (every M steps),
 * at checkpoints and on a stop request. The trajectory depends only on the config and the seed (no
 * wall-clock input), so an interrupted and resumed run reproduces an uninterrupted one exactly.
 * @module
 */
import { join, resolve } from "node:path";
import { gpu, initDevice } from "../../engine/gpu.ts";
import { empty, type Tensor, writeTensor } from "../../engine/tensor.ts";
import { tidy } from "../../engine/scope.ts";
import { accuracy } from "../../engine/ops/shape.ts";
import { crossEntropy, normalizeToSphere, supConLoss } from "../../engine/ops/loss.ts";
import { SGD } from "../../engine/optim/sgd.ts";
import { polynomialLr } from "../../engine/optim/schedule.ts";
import { type BatchSampler, makeSampler, Rng } from "../../data/sampler.ts";
import { channelMeanStd, type ChannelStats, type Dataset } from "../../data/dataset.ts";
import { balancedSubset, firstN } from "../../data/dataset.ts";
import { loadCifar10, loadCifar100, loadFashionMnist } from "../../data/files.ts";
import { syntheticDataset } from "../../data/synthetic.ts";
import { corruptLabels } from "../../data/corruption.ts";
import type { LinearClassifier } from "../../models/classifier.ts";
import type { ResNet18 } from "../../models/resnet.ts";
import { CsvLogger, readCsv } from "../lib/csv.ts";
import { writeJsonAtomic } from "../lib/atomic.ts";
import { saveConfig } from "../lib/cli.ts";
import { writeSummary } from "../lib/summary.ts";
import { Progress } from "../lib/progress.ts";
import {
  checkResumeConfig,
  ConfigError,
  configHash,
  defaultDataPath,
  type TrainConfig,
  validateTrainConfig,
} from "./config.ts";
import {
  buildNetwork,
  CLASSIFIER_PREFIX,
  type DataInfo,
  momentumFor,
  NonFiniteCheckpointError,
  readCheckpoint,
  saveCheckpoint,
  stateDictFrom,
} from "./checkpoint.ts";
import { BatchBuffers, GpuDataset, padDataset } from "./data_gpu.ts";
import { evaluateError, type FeatureSet, type Head, sphereEncoder, trainProbe } from "./evaluate.ts";
import { Throttle } from "../../engine/throttle.ts";

/** File names inside a run folder. */
export const RUN_FILES = {
  config: "config.json",
  checkpoint: "checkpoint.safetensors",
  metrics: "metrics.csv",
  summary: "summary.json",
  corruption: "corruption.json",
  figure: "loss",
} as const;

/** Columns of metrics.csv. Evaluation columns are empty on rows without an evaluation. */
export const METRIC_COLUMNS = [
  "step",
  "lr",
  "loss",
  "loss_per_sample",
  "loss_avg",
  "batch_error",
  "images_per_s",
  "elapsed_s",
  "train_error",
  "train_error_clean",
  "test_error",
  "probe_loss",
] as const;

/** One row of metrics.csv (missing values are empty cells). */
export interface MetricsRow {
  /** Completed iterations. */
  step: number;
  /** Learning rate of the last iteration. */
  lr?: number;
  /** Loss of the last iteration's batch (SC: the sum over the b anchors). */
  loss?: number;
  /** Loss per sample (SC: loss / b; CE: the loss itself, already a mean). */
  loss_per_sample?: number;
  /** Mean batch loss over the iterations since the previous log row. */
  loss_avg?: number;
  /** Error of the last batch w.r.t. its (possibly corrupted) labels (CE, CE-fix). */
  batch_error?: number;
  /** Training throughput since the previous log row. */
  images_per_s?: number;
  /** Seconds of training so far (over all resumed sessions). */
  elapsed_s?: number;
  /** Error on the training set under the training transform, w.r.t. the labels trained on. */
  train_error?: number;
  /** The same w.r.t. the clean labels (only with corruption). */
  train_error_clean?: number;
  /** Test error (no augmentation). */
  test_error?: number;
  /** SC: cross-entropy of the probe's last batch. */
  probe_loss?: number;
}

/** Errors of one evaluation. */
export interface EvalMetrics {
  /** Step evaluated. */
  step: number;
  /** Training error (training transform, labels trained on). */
  trainError: number;
  /** Training error w.r.t. the clean labels (equal to trainError without corruption). */
  trainErrorClean: number;
  /** Test error. */
  testError: number;
  /** SC: the probe's last batch loss. */
  probeLoss?: number;
}

/** Callbacks of {@link trainRun} (for experiments built on top, and tests). */
export interface TrainHooks {
  /** After each metrics row is written. */
  onLog?(row: MetricsRow): void;
  /** After each evaluation. */
  onEval?(metrics: EvalMetrics): void;
  /**
   * Polled after every step: returning true stops the run like SIGINT (the step is finished, a
   * checkpoint is written and trainRun returns with status "stopped").
   */
  shouldStop?(step: number): boolean;
  /**
   * After the final evaluation, with the trained modules still alive (e.g. to compute geometry
   * statistics); `head` is the classifier (CE, CE-fix) or the probe (SC).
   */
  onFinish?(ctx: FinishContext): Promise<void> | void;
}

/** What {@link TrainHooks.onFinish} sees. */
export interface FinishContext {
  /** The trained encoder (eval mode). */
  model: ResNet18;
  /** Classifier or probe. */
  head: Head | null;
  /** Training data on the GPU (labels as trained on). */
  train: GpuDataset;
  /** Test data on the GPU. */
  test: GpuDataset;
  /** The config. */
  config: TrainConfig;
}

/** Result of {@link trainRun}. */
export interface TrainResult {
  /**
   * "completed" (all iterations and the evaluation), "interrupted" (SIGINT/SIGTERM; resumable) or
   * "stopped" (`hooks.shouldStop` asked for it, e.g. a random-label run that fitted; also resumable).
   */
  status: "completed" | "interrupted" | "stopped";
  /** The run folder. */
  outDir: string;
  /** Completed iterations. */
  step: number;
  /** Total iterations T. */
  iterations: number;
  /** Final evaluation (null when interrupted). */
  metrics: EvalMetrics | null;
  /** The last metrics row. */
  lastLog: MetricsRow | null;
  /** Mean training throughput of this session (images per second). */
  imagesPerSecond: number;
  /** Files written. */
  paths: {
    config: string;
    checkpoint: string;
    metrics: string;
    summary: string;
    corruption?: string;
    figureSvg?: string;
    figurePng?: string;
  };
  /** The command that continues an interrupted run. */
  resumeCommand: string;
}

/** A non-finite loss (or non-finite weights) stopped the run; the last good checkpoint is kept. */
export class NonFiniteLossError extends Error {
  /** The error for a run that diverged at `step`. */
  constructor(
    /** The step (1-based iteration) at which training diverged. */
    readonly step: number,
    /** The checkpoint left in place (null when none was written yet). */
    readonly checkpoint: string | null,
    /** Its step (0 when none). */
    readonly checkpointStep: number,
    /** What was not finite (default: the loss of `step`). */
    detail?: string,
  ) {
    super(
      `training diverged at step ${step}: ${detail ?? `the loss is not finite at step ${step}`}; ` +
        (checkpoint
          ? `the last good checkpoint (step ${checkpointStep}) is ${checkpoint}`
          : "no checkpoint had been written") +
        " (try a smaller --lr)",
    );
    this.name = "NonFiniteLossError";
  }
}

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

/** The per-step monitor kernel: ring buffer of losses / batch accuracies and the first non-finite step. */
function monitorCode(m: number, withAcc: boolean): string {
  return `@group(0) @binding(0) var<storage, read> loss: array<f32>;
${withAcc ? "@group(0) @binding(1) var<storage, read> acc: array<f32>;" : ""}
@group(0) @binding(${withAcc ? 2 : 1}) var<storage, read_write> state: array<u32>;
@compute @workgroup_size(1)
fn main() {
  let s = state[1] + 1u;
  state[1] = s;
  let bits = bitcast<u32>(loss[0]);
  if ((bits & 0x7f800000u) == 0x7f800000u && state[0] == 0u) { state[0] = s; }
  let slot = (s - 1u) % ${m}u;
  state[2u + slot] = bits;
  state[${2 + m}u + slot] = ${withAcc ? "bitcast<u32>(acc[0])" : "0u"};
}`;
}

/** One readback of the monitor: the first non-finite step (0 = none), the step counter, the ring. */
interface MonitorSnapshot {
  firstBad: number;
  counter: number;
  losses: Float32Array;
  accs: Float32Array;
}

function elapsedSince(t0: number): number {
  return (performance.now() - t0) / 1000;
}

function fmt(x: number | undefined, digits = 4): string {
  return x === undefined || Number.isNaN(x) ? "?" : x.toPrecision(digits);
}

/**
 * Runs (or resumes, with `config.resume`) one Section 5 training run in `config.out`: trains for
 * `config.iterations`, logging to metrics.csv every `logEvery` steps and checkpointing every
 * `checkpointEvery` steps, on SIGINT/SIGTERM (or `hooks.shouldStop`) and at the end; then evaluates
 * the training error (training transform) and the test error, with the classifier (CE, CE-fix) or
 * a linear probe trained on the frozen encoder (SC); writes summary.json and the loss figure.
 *
 * Throws {@link NonFiniteLossError} when the loss becomes NaN/infinite (the last good checkpoint is
 * kept), `ConfigError` for a bad config or a mismatched resume.
 */
export async function trainRun(config: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  validateTrainConfig(config);
  const out = config.out;
  await Deno.mkdir(out, { recursive: true });
  const paths: TrainResult["paths"] = {
    config: join(out, RUN_FILES.config),
    checkpoint: join(out, RUN_FILES.checkpoint),
    metrics: join(out, RUN_FILES.metrics),
    summary: join(out, RUN_FILES.summary),
  };
  const resumeCommand = `deno task train --out ${out} --resume` +
    (config.iterations !== 100000 ? ` --iterations ${config.iterations}` : "") + " (plus the same options)";
  const hash = configHash(config);

  // --- resume checks (before touching anything in the folder)
  let resumed: Awaited<ReturnType<typeof readCheckpoint>> | null = null;
  const exists = (p: string) => {
    try {
      Deno.statSync(p);
      return true;
    } catch {
      return false;
    }
  };
  if (config.resume) {
    if (!exists(paths.checkpoint)) {
      throw new ConfigError(
        `--resume: no checkpoint at ${paths.checkpoint} (start a new run without --resume)`,
      );
    }
    resumed = await readCheckpoint(paths.checkpoint);
    if (exists(paths.config)) {
      const saved = JSON.parse(await Deno.readTextFile(paths.config)) as TrainConfig;
      checkResumeConfig(saved, config, resumed.meta.step);
    }
    checkResumeConfig(resumed.meta.config, config, resumed.meta.step);
    if (resumed.meta.final && resumed.meta.step === config.iterations) {
      throw new ConfigError(
        `--resume: the run in ${out} is already complete (${resumed.meta.step} iterations); pass a larger --iterations to continue it`,
      );
    }
    if (resumed.meta.configHash !== hash) {
      throw new ConfigError(
        `--resume: config hash ${hash} differs from the checkpoint's ${resumed.meta.configHash}`,
      );
    }
  } else if (exists(paths.checkpoint)) {
    throw new ConfigError(
      `${out} already holds a run (${paths.checkpoint}); pass --resume to continue it or choose another --out`,
    );
  }
  await saveConfig(out, config);

  // --- data and model
  await initDevice();
  const data = await prepareData(config);
  if (config.corruption > 0) {
    paths.corruption = join(out, RUN_FILES.corruption);
    await writeJsonAtomic(paths.corruption, {
      p: config.corruption,
      mode: config.corruptionMode,
      seed: deriveSeed(config.seed, "corruption"),
      count: data.corruptedIndices.length,
      indices: data.corruptedIndices,
      labels: Int32Array.from(data.corruptedIndices, (i) => data.labels[i]),
      originalLabels: Int32Array.from(data.corruptedIndices, (i) => data.train.labels[i]),
    });
  }
  const info: DataInfo = {
    numClasses: data.train.numClasses,
    channels: data.train.channels,
    height: data.train.height,
    width: data.train.width,
    nTrain: data.train.n,
  };
  if (resumed) {
    const d = resumed.meta.data;
    if (d.numClasses !== info.numClasses || d.nTrain !== info.nTrain || d.channels !== info.channels) {
      throw new ConfigError(
        `--resume: the data differ from the checkpoint's (${JSON.stringify(d)} vs ${JSON.stringify(info)})`,
      );
    }
  }
  // Everything allocated on the GPU from here on is registered for disposal, also on early errors.
  const cleanup: (() => void)[] = [];
  try {
    return await runSession();
  } finally {
    for (const f of cleanup.splice(0).reverse()) {
      try {
        f();
      } catch { /* already disposed */ }
    }
  }

  async function runSession(): Promise<TrainResult> {
    const trainData = GpuDataset.upload(data.train, { labels: data.labels, stats: data.stats });
    cleanup.push(() => trainData.dispose());
    const testData = GpuDataset.upload(data.test, { stats: data.stats });
    cleanup.push(() => testData.dispose());
    const { model, classifier } = buildNetwork(config, info);
    cleanup.push(() => model.dispose(), () => classifier?.dispose());
    model.train();
    const named: [string, Tensor][] = [...model.namedParameters()];
    if (classifier) {
      for (const [n, t] of classifier.namedParameters()) {
        named.push([CLASSIFIER_PREFIX + n, t]);
      }
    }
    const names = named.map(([n]) => n);
    const sgd = new SGD(named.map(([, t]) => t), {
      lr: config.lr,
      momentum: config.momentum,
      weightDecay: config.weightDecay,
    });
    cleanup.push(() => sgd.dispose());
    const rootRng = new Rng(deriveSeed(config.seed, "sampler"));
    const sampler: BatchSampler = makeSampler(config.sampler, info.nTrain, config.batch, rootRng);
    const augRng = new Rng(deriveSeed(config.seed, "augment"));
    let step = 0;
    let elapsedBefore = 0;
    if (resumed) {
      const { meta, tensors } = resumed;
      model.loadStateDict(stateDictFrom(tensors));
      if (classifier) classifier.loadStateDict(stateDictFrom(tensors, CLASSIFIER_PREFIX));
      sgd.loadStateDict({
        step: meta.state.optimizerSteps,
        momentum: config.momentum !== 0 ? momentumFor(sgd, names, tensorsMomentum(tensors)) : null,
      });
      sampler.setState(meta.state.sampler);
      augRng.setState(meta.state.augRng);
      step = meta.step;
      elapsedBefore = meta.state.elapsedSeconds ?? 0;
    }
    const T = config.iterations;
    const M = config.logEvery;
    const csv = await CsvLogger.open(paths.metrics, {
      columns: METRIC_COLUMNS,
      ...(resumed ? { resumeAfterStep: step } : {}),
    });
    cleanup.push(() => csv.close());
    let checkpointStep = resumed ? step : 0;
    let checkpointWritten = resumed !== null;

    // --- monitor state: [firstBad, counter, M losses, M accuracies]
    const withAcc = classifier !== null;
    const monitor = empty([2 + 2 * M], "u32");
    cleanup.push(() => monitor.dispose());
    writeTensor(monitor, new Uint32Array(2 + 2 * M).fill(0).fill(step, 1, 2));
    const readMonitor = async (): Promise<MonitorSnapshot> => {
      const bytes = await gpu().read(monitor.range);
      const u = new Uint32Array(bytes, 0, 2 + 2 * M);
      const f = new Float32Array(bytes, 0, 2 + 2 * M);
      return { firstBad: u[0], counter: u[1], losses: f.slice(2, 2 + M), accs: f.slice(2 + M, 2 + 2 * M) };
    };

    // --- signals
    let stopSignal: string | null = null;
    const listeners: [Deno.Signal, () => void][] = [];
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      const fn = () => {
        if (stopSignal && sig === "SIGINT") {
          console.error("\nsecond SIGINT: exiting without a checkpoint");
          Deno.exit(130);
        }
        stopSignal = sig;
        if (!config.quiet) console.error(`\n${sig}: finishing the current step, then writing a checkpoint…`);
      };
      try {
        Deno.addSignalListener(sig, fn);
        listeners.push([sig, fn]);
      } catch { /* signal unsupported on this platform */ }
    }

    const buffers = new BatchBuffers(config.batch);
    cleanup.push(() => buffers.dispose());
    const hostIdx = new Int32Array(config.batch);
    const radius = 1 / Math.sqrt(config.tau);
    const sessionStart = performance.now();
    const stepsAtStart = step;
    let lastLog: MetricsRow | null = null;
    let lastLogStep = resumed ? resumed.meta.state.lastLogStep ?? step : step;
    let pendingLosses: number[] = resumed ? [...(resumed.meta.state.pendingLosses ?? [])] : [];
    let lastReadStep = step;
    let lastLogTime = performance.now();
    let lastLr = polynomialLr(config.lr, Math.max(0, step - 1), T, config.lrPower);
    const progress = new Progress(T - step, {
      label: `train ${config.loss}`,
      quiet: config.quiet,
      unit: "it",
    });
    const throttle = new Throttle();
    let finalMetrics: EvalMetrics | null = null;
    let probe: LinearClassifier | null = null;
    cleanup.push(() => (probe as LinearClassifier | null)?.dispose());
    const elapsed = () => elapsedBefore + elapsedSince(sessionStart);

    const writeCheckpoint = async (final: boolean): Promise<void> => {
      csv.sync();
      try {
        await saveCheckpoint(paths.checkpoint, {
          model,
          classifier,
          probe,
          optimizer: { sgd, names },
          meta: {
            step,
            config,
            configHash: hash,
            data: info,
            state: {
              sampler: sampler.getState(),
              augRng: augRng.getState(),
              optimizerSteps: sgd.steps,
              csvRows: csv.rowCount,
              elapsedSeconds: elapsed(),
              lastLogStep,
              pendingLosses: [...pendingLosses],
            },
            final,
          },
        });
        checkpointStep = step;
        checkpointWritten = true;
      } catch (e) {
        if (e instanceof NonFiniteCheckpointError) {
          throw new NonFiniteLossError(
            step,
            checkpointWritten ? paths.checkpoint : null,
            checkpointStep,
            `the update of step ${step} made the weights non-finite (${e.names.slice(0, 3).join(", ")}${
              e.names.length > 3 ? ", …" : ""
            }), so no later loss can be finite`,
          );
        }
        throw e;
      }
    };

    const evaluate = async (): Promise<EvalMetrics> => {
      const evalSeed = deriveSeed(config.seed, `eval:${step}`);
      let head: Head;
      let probeLoss: number | undefined;
      // SC: the probe sees the projected outputs z = ρ·u/‖u‖ (the encoder's output in the paper).
      const encoder = config.loss === "sc" ? sphereEncoder(model, radius) : model;
      if (config.loss === "sc") {
        probe?.dispose();
        const r = await trainProbe(
          config.augment
            ? { model: encoder, data: trainData, augment: true }
            : { model: encoder, data: trainData, augment: false, extractBatchSize: config.evalBatch },
          {
            numClasses: info.numClasses,
            iterations: config.probeIterations,
            lr: config.probeLr,
            weightDecay: config.probeWeightDecay,
            power: config.lrPower,
            batchSize: config.batch,
            seed: deriveSeed(config.seed, `probe:${step}`),
          },
        );
        probe = r.probe;
        probeLoss = r.lastLoss;
        head = probe;
      } else {
        head = classifier!;
      }
      const tr = await evaluateError(encoder, head, trainData, {
        augment: config.augment,
        batchSize: config.evalBatch,
        seed: evalSeed,
        cleanLabels: data.train.labels,
      });
      const te = await evaluateError(encoder, head, testData, {
        augment: false,
        batchSize: config.evalBatch,
      });
      model.train();
      const m: EvalMetrics = {
        step,
        trainError: tr.error,
        trainErrorClean: tr.cleanError ?? tr.error,
        testError: te.error,
        ...(probeLoss !== undefined ? { probeLoss } : {}),
      };
      hooks.onEval?.(m);
      return m;
    };

    const logRow = (row: MetricsRow) => {
      csv.log(row as unknown as Record<string, unknown>);
      lastLog = row;
      hooks.onLog?.(row);
    };

    let status: TrainResult["status"] = "completed";
    try {
      // --- training loop
      while (step < T) {
        sampler.next(hostIdx);
        buffers.upload(hostIdx, config.augment ? augRng : null);
        const lr = polynomialLr(config.lr, step, T, config.lrPower);
        tidy(() => {
          const x = trainData.assemble(buffers.indices, config.augment ? buffers.params : null);
          const y = trainData.gatherLabels(buffers.indices);
          const features = model.forward(x);
          let loss: Tensor;
          let acc: Tensor | null = null;
          if (classifier) {
            const logits = classifier.forward(features);
            loss = crossEntropy(logits, y);
            acc = accuracy(logits, y);
          } else {
            loss = supConLoss(normalizeToSphere(features, radius), y);
          }
          sgd.zeroGrad();
          // Nothing reads the activations after backward: free them layer by layer (peak memory).
          loss.backward(undefined, { releaseIntermediates: true });
          sgd.step(lr);
          gpu().dispatch(
            { name: "train.monitor", code: monitorCode(M, withAcc) },
            [loss.range, ...(acc ? [acc.range] : []), monitor.range],
            [1, 1, 1],
          );
        });
        gpu().flush();
        step++;
        lastLr = lr;
        progress.tick(1);
        await throttle.tick();

        let stop = stopSignal !== null || (hooks.shouldStop?.(step) ?? false);
        const logNow = step % M === 0 || step === T;
        const ckptNow = config.checkpointEvery > 0 && step % config.checkpointEvery === 0 && step < T;
        const evalNow = config.evalEvery > 0 && step % config.evalEvery === 0 && step < T;
        if (logNow || ckptNow || evalNow || stop) {
          const snap = await readMonitor();
          if (snap.counter !== step) {
            throw new Error(`internal: monitor counted ${snap.counter} steps, expected ${step}`);
          }
          for (let s = lastReadStep; s < step; s++) pendingLosses.push(snap.losses[s % M]);
          lastReadStep = step;
          const slot = (step - 1) % M;
          const loss = snap.losses[slot];
          const now = performance.now();
          const n = step - lastLogStep;
          const row: MetricsRow = {
            step,
            lr: Math.fround(lr),
            loss,
            loss_per_sample: config.loss === "sc" ? loss / config.batch : loss,
            loss_avg: pendingLosses.reduce((a, b) => a + b, 0) / pendingLosses.length,
            ...(withAcc ? { batch_error: 1 - snap.accs[slot] } : {}),
            images_per_s: ((step - Math.max(lastLogStep, stepsAtStart)) * config.batch) /
              ((now - lastLogTime) / 1000),
            elapsed_s: elapsed(),
          };
          if (snap.firstBad !== 0) {
            if (n > 0) logRow(row);
            throw new NonFiniteLossError(
              snap.firstBad,
              checkpointWritten ? paths.checkpoint : null,
              checkpointStep,
            );
          }
          if (evalNow) {
            const m = await evaluate();
            row.train_error = m.trainError;
            if (config.corruption > 0) row.train_error_clean = m.trainErrorClean;
            row.test_error = m.testError;
            if (m.probeLoss !== undefined) row.probe_loss = m.probeLoss;
            // The hook may ask to stop because of this very evaluation (e.g. a random-label run fitted).
            if (!stop && (hooks.shouldStop?.(step) ?? false)) stop = true;
          }
          if (logNow || evalNow) {
            logRow(row);
            lastLogStep = step;
            pendingLosses = [];
            lastLogTime = performance.now();
            progress.update(step - stepsAtStart, `loss ${fmt(row.loss_per_sample)} lr ${fmt(lr, 3)}`);
          }
          if (ckptNow || stop) await writeCheckpoint(false);
        }
        if (stop) {
          status = stopSignal !== null ? "interrupted" : "stopped";
          break;
        }
      }
      progress.done();

      if (status === "completed") {
        // Save the trained weights before the (long) evaluation, then again with the probe.
        if (!(resumed && resumed.meta.step === T && checkpointStep === T)) await writeCheckpoint(false);
        finalMetrics = await evaluate();
        const row: MetricsRow = {
          step,
          lr: Math.fround(lastLr),
          train_error: finalMetrics.trainError,
          test_error: finalMetrics.testError,
          elapsed_s: elapsed(),
          ...(config.corruption > 0 ? { train_error_clean: finalMetrics.trainErrorClean } : {}),
          ...(finalMetrics.probeLoss !== undefined ? { probe_loss: finalMetrics.probeLoss } : {}),
        };
        logRow(row);
        await writeCheckpoint(true);
        if (hooks.onFinish) {
          model.eval();
          await hooks.onFinish({
            model,
            head: probe ?? classifier,
            train: trainData,
            test: testData,
            config,
          });
          model.train();
        }
      }
    } catch (e) {
      if (e instanceof NonFiniteLossError) {
        csv.close();
        await writeSummary(out, {
          status: "diverged",
          step: e.step,
          message: e.message,
          checkpoint: e.checkpoint,
          checkpointStep: e.checkpointStep,
          config,
        });
      }
      throw e;
    } finally {
      for (const [sig, fn] of listeners) {
        try {
          Deno.removeSignalListener(sig, fn);
        } catch { /* ignore */ }
      }
      csv.close();
    }

    const sessionSeconds = elapsedSince(sessionStart);
    const imagesPerSecond = ((step - stepsAtStart) * config.batch) / Math.max(1e-9, sessionSeconds);
    const finalLog = lastLog as MetricsRow | null;
    if (status === "completed") {
      try {
        const figure = await saveLossFigure(out, paths.metrics, config);
        paths.figureSvg = figure.svg;
        if (figure.png) paths.figurePng = figure.png;
      } catch (e) {
        if (!config.quiet) console.error(`warning: loss figure not written: ${(e as Error).message}`);
      }
    }
    await writeSummary(out, {
      status,
      step,
      iterations: T,
      config,
      configHash: hash,
      metrics: finalMetrics,
      lastLog: finalLog,
      imagesPerSecond,
      sessionSeconds,
      paths,
      ...(status === "interrupted" ? { resume: resumeCommand } : {}),
    });
    return {
      status,
      outDir: resolve(out),
      step,
      iterations: T,
      metrics: finalMetrics,
      lastLog: finalLog,
      imagesPerSecond,
      paths,
      resumeCommand,
    };
  }
}
function tensorsMomentum(tensors: Record<string, { data: unknown }>): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (name.startsWith("optimizer.momentum.")) {
      out[name.slice("optimizer.momentum.".length)] = t.data as Float32Array;
    }
  }
  return out;
}

/** Draws the loss curve of a run from its metrics.csv into `<dir>/loss.svg` and `loss.png`. */
export async function saveLossFigure(
  dir: string,
  metricsPath: string,
  config: TrainConfig,
): Promise<{ svg: string; png?: string }> {
  const { saveFigure, lineChart } = await import("../lib/plot.ts");
  const rows = (await readCsv(metricsPath, { numbers: true })).filter((r) =>
    typeof r.loss_per_sample === "number" && Number.isFinite(r.loss_per_sample)
  );
  const yTitle = config.loss === "sc" ? "SC loss per anchor (sum / b)" : "cross-entropy";
  const spec = lineChart({
    title: `${config.loss.toUpperCase()} on ${config.dataset} (ResNet-18 ×${config.width})`,
    data: rows.map((r) => ({
      step: r.step,
      "last batch": r.loss_per_sample,
      "mean since previous row": typeof r.loss_avg === "number"
        ? r.loss_avg / (config.loss === "sc" ? config.batch : 1)
        : null,
    })),
    x: "step",
    y: ["last batch", "mean since previous row"],
    xTitle: "iteration",
    yTitle,
  });
  return await saveFigure(dir, RUN_FILES.figure, spec);
}

/** Features of a host feature set, re-exported for convenience of experiments built on top. */
export type { FeatureSet };
