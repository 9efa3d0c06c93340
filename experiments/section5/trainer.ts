/**
 * Section 5 training: ResNet-18 with CE, CE-fix or SC on a GPU-resident dataset, composed from the
 * training room (`train/`): the run's `TrainState` (encoder, classifier, probe, SGD, sampler and
 * augmentation generators) is checkpointed whole; `TrainLoop` records each step (assembly → forward →
 * loss → backward → SGD update → monitor), submits, and reads metrics back only at log points, at
 * checkpoints and on a stop request; the final evaluation goes through a linear probe for SC. The
 * trajectory depends only on the config and the seed, so an interrupted and resumed run reproduces an
 * uninterrupted one exactly.
 * @module
 */
import { join, resolve } from "node:path";
import { initDevice } from "../../engine/gpu.ts";
import type { Tensor } from "../../engine/tensor.ts";
import { accuracy } from "../../engine/ops/shape.ts";
import { crossEntropy, normalizeToSphere, supConLoss } from "../../engine/ops/loss.ts";
import { SGD } from "../../engine/optim/sgd.ts";
import { polynomialLr } from "../../engine/optim/schedule.ts";
import { makeSampler, Rng } from "../../data/sampler.ts";
import type { LinearClassifier, SimplexClassifier } from "../../models/classifier.ts";
import type { ResNet18 } from "../../models/resnet.ts";
import { CsvLogger, readCsv } from "../../train/csv.ts";
import { writeJsonAtomic } from "../../train/atomic.ts";
import { BatchFeed, GpuDataset } from "../../train/data_gpu.ts";
import {
  evaluateError,
  type FeatureSet,
  type Head,
  sphereEncoder,
  trainProbe,
} from "../../train/evaluate.ts";
import { type LogRecord, NonFiniteLossError, TrainLoop } from "../../train/loop.ts";
import { StopSignals } from "../../train/signals.ts";
import { TrainState } from "../../train/state.ts";
import { saveConfig } from "../lib/cli.ts";
import { writeSummary } from "../lib/summary.ts";
import { Progress } from "../lib/progress.ts";
import {
  checkResumeConfig,
  ConfigError,
  configHash,
  type TrainConfig,
  validateTrainConfig,
} from "./config.ts";
import {
  buildNetwork,
  CHECKPOINT_FORMAT,
  checkpointMetadata,
  CLASSIFIER_PREFIX,
  type DataInfo,
  PROBE_PREFIX,
  type RawCheckpoint,
  readCheckpoint,
} from "./checkpoint.ts";
import { deriveSeed, prepareData, type PreparedData } from "./data.ts";
import {
  type EvalMetrics,
  METRIC_COLUMNS,
  type MetricsRow,
  RUN_FILES,
  type TrainHooks,
  type TrainResult,
} from "./types.ts";

export { NonFiniteLossError } from "../../train/loop.ts";
export { deriveSeed, prepareData, type PreparedData } from "./data.ts";
export * from "./types.ts";

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The resume checks, before anything in the folder is touched: returns the checkpoint to resume from. */
async function checkResume(
  config: TrainConfig,
  paths: TrainResult["paths"],
  hash: string,
): Promise<RawCheckpoint | null> {
  if (!config.resume) {
    if (!exists(paths.checkpoint)) return null;
    throw new ConfigError(
      `${config.out} already holds a run (${paths.checkpoint}); pass --resume to continue it or choose another --out`,
    );
  }
  if (!exists(paths.checkpoint)) {
    throw new ConfigError(
      `--resume: no checkpoint at ${paths.checkpoint} (start a new run without --resume)`,
    );
  }
  const resumed = await readCheckpoint(paths.checkpoint);
  if (exists(paths.config)) {
    const saved = JSON.parse(await Deno.readTextFile(paths.config)) as TrainConfig;
    checkResumeConfig(saved, config, resumed.meta.step);
  }
  checkResumeConfig(resumed.meta.config, config, resumed.meta.step);
  if (resumed.meta.final && resumed.meta.step === config.iterations) {
    throw new ConfigError(
      `--resume: the run in ${config.out} is already complete (${resumed.meta.step} iterations); pass a larger --iterations to continue it`,
    );
  }
  if (resumed.meta.configHash !== hash) {
    throw new ConfigError(
      `--resume: config hash ${hash} differs from the checkpoint's ${resumed.meta.configHash}`,
    );
  }
  return resumed;
}

/** The shape facts of a run's data; refuses a resume on different data. */
function dataInfo(data: PreparedData, resumed: RawCheckpoint | null): DataInfo {
  const t = data.train;
  const info = {
    numClasses: t.numClasses,
    channels: t.channels,
    height: t.height,
    width: t.width,
    nTrain: t.n,
  };
  const d = resumed?.meta.data;
  if (d && (d.numClasses !== info.numClasses || d.nTrain !== info.nTrain || d.channels !== info.channels)) {
    throw new ConfigError(
      `--resume: the data differ from the checkpoint's (${JSON.stringify(d)} vs ${JSON.stringify(info)})`,
    );
  }
  return info;
}

/** Writes corruption.json (which labels were changed, and to what). */
async function writeCorruption(path: string, config: TrainConfig, data: PreparedData): Promise<void> {
  await writeJsonAtomic(path, {
    p: config.corruption,
    mode: config.corruptionMode,
    seed: deriveSeed(config.seed, "corruption"),
    count: data.corruptedIndices.length,
    indices: data.corruptedIndices,
    labels: Int32Array.from(data.corruptedIndices, (i) => data.labels[i]),
    originalLabels: Int32Array.from(data.corruptedIndices, (i) => data.train.labels[i]),
  });
}

/** The trained network and data an evaluation reads. */
interface Trained {
  config: TrainConfig;
  model: ResNet18;
  classifier: LinearClassifier | SimplexClassifier | null;
  state: TrainState;
  train: GpuDataset;
  test: GpuDataset;
  cleanLabels: Int32Array;
}

/**
 * Training error (training transform) and test error at the state's step, with the classifier (CE,
 * CE-fix) or a linear probe trained on the frozen encoder's projected outputs (SC), which replaces the
 * state's previous probe.
 */
async function evaluateRun(r: Trained): Promise<EvalMetrics> {
  const { config, model, state } = r, step = state.step;
  let head: Head = r.classifier!;
  let probeLoss: number | undefined;
  // SC: the probe sees the projected outputs z = ρ·u/‖u‖ (the encoder's output in the paper).
  const encoder = config.loss === "sc" ? sphereEncoder(model, 1 / Math.sqrt(config.tau)) : model;
  if (config.loss === "sc") {
    state.modules[PROBE_PREFIX]?.dispose();
    state.modules[PROBE_PREFIX] = null;
    const source = config.augment
      ? { model: encoder, data: r.train, augment: true }
      : { model: encoder, data: r.train, augment: false, extractBatchSize: config.evalBatch };
    const p = await trainProbe(source, {
      numClasses: r.train.numClasses,
      iterations: config.probeIterations,
      lr: config.probeLr,
      weightDecay: config.probeWeightDecay,
      power: config.lrPower,
      batchSize: config.batch,
      seed: deriveSeed(config.seed, `probe:${step}`),
    });
    head = state.modules[PROBE_PREFIX] = p.probe;
    probeLoss = p.lastLoss;
  }
  const seed = deriveSeed(config.seed, `eval:${step}`);
  const batchSize = config.evalBatch;
  const tr = await evaluateError(encoder, head, r.train, {
    augment: config.augment,
    batchSize,
    seed,
    cleanLabels: r.cleanLabels,
  });
  const te = await evaluateError(encoder, head, r.test, { augment: false, batchSize });
  model.train();
  const trainErrorClean = tr.cleanError ?? tr.error;
  return {
    step,
    trainError: tr.error,
    trainErrorClean,
    testError: te.error,
    ...(probeLoss !== undefined ? { probeLoss } : {}),
  };
}

/** The metrics row of a log record (evaluation columns when one ran). */
function metricsRow(config: TrainConfig, r: LogRecord<EvalMetrics>): MetricsRow {
  const [loss, acc] = r.values;
  const row: MetricsRow = {
    step: r.step,
    lr: Math.fround(polynomialLr(config.lr, r.step - 1, config.iterations, config.lrPower)),
    loss,
    loss_per_sample: config.loss === "sc" ? loss / config.batch : loss,
    loss_avg: r.lossMean,
    ...(config.loss === "sc" ? {} : { batch_error: 1 - acc }),
    images_per_s: r.samplesPerSecond,
    elapsed_s: r.elapsedSeconds,
  };
  return r.evaluation ? { ...row, ...evalColumns(config, r.evaluation) } : row;
}

function evalColumns(config: TrainConfig, m: EvalMetrics): Partial<MetricsRow> {
  return {
    train_error: m.trainError,
    ...(config.corruption > 0 ? { train_error_clean: m.trainErrorClean } : {}),
    test_error: m.testError,
    ...(m.probeLoss !== undefined ? { probe_loss: m.probeLoss } : {}),
  };
}

/** Disposes `d`, ignoring an error (already disposed): cleanup must not mask the run's own error. */
function disposeQuietly(d: { dispose(): void } | null | undefined): void {
  try {
    d?.dispose();
  } catch { /* already disposed */ }
}

function fmt(x: number | undefined, digits = 4): string {
  return x === undefined || Number.isNaN(x) ? "?" : x.toPrecision(digits);
}

/** A run folder opened: its paths, the checkpoint to resume from, and the data. */
interface OpenedRun {
  paths: TrainResult["paths"];
  resumeCommand: string;
  hash: string;
  resumed: RawCheckpoint | null;
  data: PreparedData;
  info: DataInfo;
}

/** Checks the config and a resume, writes config.json, prepares the data (and corruption.json). */
async function openRun(config: TrainConfig): Promise<OpenedRun> {
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
  const resumed = await checkResume(config, paths, hash);
  await saveConfig(out, config);
  await initDevice();
  const data = await prepareData(config);
  if (config.corruption > 0) {
    await writeCorruption(paths.corruption = join(out, RUN_FILES.corruption), config, data);
  }
  return { paths, resumeCommand, hash, resumed, data, info: dataInfo(data, resumed) };
}

/** A run's GPU data, network, optimiser and generators, as one TrainState (restored when resuming). */
async function buildRun(
  config: TrainConfig,
  { data, info, resumed }: OpenedRun,
  own: <D extends { dispose(): void }>(d: D) => D,
): Promise<Trained & { sgd: SGD; feed: BatchFeed }> {
  const train = own(GpuDataset.upload(data.train, { labels: data.labels, stats: data.stats }));
  const test = own(GpuDataset.upload(data.test, { stats: data.stats }));
  const { model, classifier } = buildNetwork(config, info);
  own(model.train());
  if (classifier) own(classifier);
  const { lr, momentum, weightDecay } = config;
  const params = [...model.parameters(), ...(classifier?.parameters() ?? [])];
  const sgd = own(new SGD(params, { lr, momentum, weightDecay }));
  const samplerRng = new Rng(deriveSeed(config.seed, "sampler"));
  const sampler = makeSampler(config.sampler, info.nTrain, config.batch, samplerRng);
  const augRng = new Rng(deriveSeed(config.seed, "augment"));
  const state = new TrainState({
    modules: { "": model, [CLASSIFIER_PREFIX]: classifier, [PROBE_PREFIX]: null },
    optimizer: sgd,
    rngs: { sampler, augRng },
  });
  own({ dispose: () => state.modules[PROBE_PREFIX]?.dispose() });
  if (resumed) await state.restore({ ...resumed.meta, metadata: {}, tensors: resumed.tensors });
  const feed = own(new BatchFeed(train, { sampler, augment: config.augment ? augRng : null }));
  return { config, model, classifier, state, train, test, cleanLabels: data.train.labels, sgd, feed };
}

/** One training step: batch → encoder → CE (with the batch accuracy) or SC → backward → SGD. */
function trainStep(r: Trained & { sgd: SGD; feed: BatchFeed }): (step: number) => Tensor[] {
  const { config, model, classifier, sgd, feed } = r;
  const radius = 1 / Math.sqrt(config.tau);
  return (t) => {
    const { x, y } = feed.next();
    const features = model.forward(x);
    const logits = classifier?.forward(features);
    const loss = logits ? crossEntropy(logits, y) : supConLoss(normalizeToSphere(features, radius), y);
    const acc: Tensor[] = logits ? [accuracy(logits, y)] : [];
    sgd.zeroGrad();
    // Nothing reads the activations after backward: free them layer by layer (peak memory).
    loss.backward(undefined, { releaseIntermediates: true });
    sgd.step(polynomialLr(config.lr, t, config.iterations, config.lrPower));
    return [loss, ...acc];
  };
}

/** Writes the loss figure (completed runs) and summary.json; the result of the run. */
async function finishRun(
  config: TrainConfig,
  opened: OpenedRun,
  end: Pick<TrainResult, "status" | "step" | "metrics" | "lastLog" | "imagesPerSecond">,
  sessionSeconds: number,
): Promise<TrainResult> {
  const { paths, resumeCommand, hash } = opened;
  if (end.status === "completed") {
    try {
      const figure = await saveLossFigure(config.out, paths.metrics, config);
      paths.figureSvg = figure.svg;
      if (figure.png) paths.figurePng = figure.png;
    } catch (e) {
      if (!config.quiet) console.error(`warning: loss figure not written: ${(e as Error).message}`);
    }
  }
  const { status, step, metrics, lastLog, imagesPerSecond } = end;
  await writeSummary(config.out, {
    status,
    step,
    iterations: config.iterations,
    config,
    configHash: hash,
    metrics,
    lastLog,
    imagesPerSecond,
    sessionSeconds,
    paths,
    ...(status === "interrupted" ? { resume: resumeCommand } : {}),
  });
  const outDir = resolve(config.out), iterations = config.iterations;
  return { status, outDir, step, iterations, metrics, lastLog, imagesPerSecond, paths, resumeCommand };
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
  const opened = await openRun(config);
  const { paths, resumed } = opened, T = config.iterations;
  // Everything on the GPU is disposed at the end, also on early errors.
  using owned = new DisposableStack();
  const own = <D extends { dispose(): void }>(d: D): D => (owned.defer(() => disposeQuietly(d)), d);
  const run = await buildRun(config, opened, own);
  const { model, classifier, state } = run;
  const csv = await CsvLogger.open(paths.metrics, {
    columns: METRIC_COLUMNS,
    ...(resumed ? { resumeAfterStep: state.step } : {}),
  });
  owned.defer(() => csv.close());
  const signals = own(new StopSignals({ quiet: config.quiet }));
  const progress = new Progress(T - state.step, {
    label: `train ${config.loss}`,
    quiet: config.quiet,
    unit: "it",
  });
  let lastLog: MetricsRow | null = null;
  const logRow = (row: MetricsRow) => {
    csv.log(row as unknown as Record<string, unknown>);
    lastLog = row;
    hooks.onLog?.(row);
  };
  const evaluate = async () => {
    const m = await evaluateRun(run);
    hooks.onEval?.(m);
    return m;
  };
  const loop = new TrainLoop<EvalMetrics>({
    state,
    iterations: T,
    step: trainStep(run),
    monitorSlots: 2,
    logEvery: config.logEvery,
    evalEvery: config.evalEvery,
    evaluate,
    onLog: (r) => {
      const row = metricsRow(config, r);
      logRow(row);
      progress.update(r.step - loop.startStep, `loss ${fmt(row.loss_per_sample)} lr ${fmt(row.lr, 3)}`);
    },
    shouldStop: hooks.shouldStop,
    checkpoint: {
      path: paths.checkpoint,
      every: config.checkpointEvery,
      format: CHECKPOINT_FORMAT,
      metadata: checkpointMetadata(config, opened.hash, opened.info),
      resumed: resumed !== null,
    },
    metrics: csv,
    signals,
    progress,
    samplesPerStep: config.batch,
    divergenceHint: "try a smaller --lr",
  });

  let status: TrainResult["status"], metrics: EvalMetrics | null = null;
  try {
    status = await loop.run();
    if (status === "completed") {
      // Save the trained weights before the (long) evaluation, then again with the probe.
      if (!(resumed && resumed.meta.step === T && loop.checkpointStep === T)) await loop.save();
      metrics = await evaluate();
      const lastLr = polynomialLr(config.lr, Math.max(0, state.step - 1), T, config.lrPower);
      const { train_error, test_error, ...rest } = evalColumns(config, metrics);
      const elapsed_s = loop.elapsed();
      logRow({ step: state.step, lr: Math.fround(lastLr), train_error, test_error, elapsed_s, ...rest });
      await loop.save(true);
      if (hooks.onFinish) {
        const head = (state.modules[PROBE_PREFIX] as LinearClassifier | null) ?? classifier;
        model.eval();
        await hooks.onFinish({ model, head, train: run.train, test: run.test, config });
        model.train();
      }
    }
  } catch (e) {
    if (e instanceof NonFiniteLossError) {
      csv.close();
      const { step, message, checkpoint, checkpointStep } = e;
      await writeSummary(config.out, {
        status: "diverged",
        step,
        message,
        checkpoint,
        checkpointStep,
        config,
      });
    }
    throw e;
  } finally {
    signals.dispose();
    csv.close();
  }
  const sessionSeconds = loop.sessionSeconds();
  const imagesPerSecond = ((state.step - loop.startStep) * config.batch) / Math.max(1e-9, sessionSeconds);
  const end = { status, step: state.step, metrics, lastLog: lastLog as MetricsRow | null, imagesPerSecond };
  return await finishRun(config, opened, end, sessionSeconds);
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
