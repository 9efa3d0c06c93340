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
import { existsSync as exists } from "node:fs";
import { join, resolve } from "node:path";
import { gpu, initDevice } from "../../engine/gpu.ts";
import type { Tensor } from "../../engine/tensor.ts";
import { accuracy } from "../../engine/ops/shape.ts";
import { crossEntropy, normalizeToSphere, supConLoss } from "../../engine/ops/loss.ts";
import { SGD } from "../../engine/optim/sgd.ts";
import { polynomialLr } from "../../engine/optim/schedule.ts";
import { makeSampler, Rng } from "../../data/sampler.ts";
import type { LinearClassifier, SimplexClassifier } from "../../models/classifier.ts";
import type { ResNet18 } from "../../models/resnet.ts";
import { CsvLogger, readCsv } from "../../train/csv.ts";
import {
  FileWriteError,
  isFileWriteError,
  removeStaleTmpFiles,
  writeFileAtomic,
  writeJsonAtomic,
} from "../../train/atomic.ts";
import { CheckpointError, previousCheckpointPath } from "../../train/checkpoint.ts";
import { RunLock } from "../../train/lock.ts";
import { checkDeviceFit } from "./limits.ts";
import { BatchFeed, GpuDataset } from "../../train/data_gpu.ts";
import {
  evaluateError,
  type FeatureSet,
  type Head,
  sphereEncoder,
  trainProbe,
} from "../../train/evaluate.ts";
import { type LogRecord, NonFiniteLossError, TrainLoop } from "../../train/loop.ts";
import { faultPoint, StopRequestedError, StopSignals } from "../../train/signals.ts";
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
export { DeviceLimitError } from "./limits.ts";

/** A run folder's own file (config.json, metrics.csv, summary.json) is damaged or inconsistent. */
export class RunFileError extends Error {
  /** The error for `path`. */
  constructor(readonly path: string, detail: string, options?: ErrorOptions) {
    super(`${path}: ${detail}`, options);
    this.name = "RunFileError";
  }
}

/** The data could not be read (missing, truncated or corrupt files); the message names the file. */
export class DataError extends Error {
  /** The error with `message` (the loader's own, which names the file, record and byte). */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DataError";
  }
}

/** Quotes one word for a POSIX shell (unchanged when it needs no quoting). */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'"'"'`)}'`;
}
export { deriveSeed, prepareData, type PreparedData } from "./data.ts";
export * from "./types.ts";

/** The resume checks, before anything in the folder is touched: returns the checkpoint to resume from. */
async function checkResume(
  config: TrainConfig,
  paths: TrainResult["paths"],
  hash: string,
): Promise<{ resumed: RawCheckpoint | null; repair: string | null; hash: string }> {
  if (!config.resume) {
    if (!exists(paths.checkpoint)) return { resumed: null, repair: null, hash };
    throw new ConfigError(
      `${config.out} already holds a run (${paths.checkpoint}); pass --resume to continue it or choose another --out`,
    );
  }
  if (!exists(paths.checkpoint)) {
    throw new ConfigError(
      `--resume: no checkpoint at ${paths.checkpoint} (start a new run without --resume)`,
    );
  }
  const resumed = await readVerified(paths.checkpoint);
  const samePlace = (a: string, b: string) => {
    if (a === b) return true;
    try {
      return Deno.realPathSync(a) === Deno.realPathSync(b);
    } catch {
      return false;
    }
  };
  // The same data folder spelt differently (trailing slash, symlink, relative path) is the same data.
  if (config.data && resumed.meta.config.data && samePlace(config.data, resumed.meta.config.data)) {
    config.data = resumed.meta.config.data;
    hash = configHash(config);
  }
  if (exists(paths.config)) {
    let saved: TrainConfig;
    try {
      saved = JSON.parse(await Deno.readTextFile(paths.config)) as TrainConfig;
    } catch (e) {
      throw new RunFileError(paths.config, `not valid JSON (truncated or edited?): ${(e as Error).message}`);
    }
    checkResumeConfig(saved, config, resumed.meta.step);
  }
  checkResumeConfig(resumed.meta.config, config, resumed.meta.step);
  if (resumed.meta.final && resumed.meta.step === config.iterations) {
    const stale = await staleArtefacts(paths, hash, resumed.meta.step);
    if (stale === null) {
      throw new ConfigError(
        `--resume: the run in ${config.out} is already complete (${resumed.meta.step} iterations); pass a larger --iterations to continue it`,
      );
    }
    if (resumed.meta.configHash !== hash) {
      throw new ConfigError(
        `--resume: config hash ${hash} differs from the checkpoint's ${resumed.meta.configHash}`,
      );
    }
    return { resumed, repair: stale, hash };
  }
  if (resumed.meta.configHash !== hash) {
    throw new ConfigError(
      `--resume: config hash ${hash} differs from the checkpoint's ${resumed.meta.configHash}`,
    );
  }
  return { resumed, repair: null, hash };
}

/**
 * The newest checkpoint, verified; when it is damaged and the previous one (kept beside it by every
 * write) is sound, a warning and the previous one, copied back into place.
 */
async function readVerified(path: string): Promise<RawCheckpoint> {
  try {
    return await readCheckpoint(path, { requireChecksum: true });
  } catch (e) {
    if (!(e instanceof CheckpointError)) throw e;
    const prev = previousCheckpointPath(path);
    let older: RawCheckpoint;
    try {
      older = await readCheckpoint(prev, { requireChecksum: true });
    } catch {
      throw e; // no sound previous checkpoint: report the newest's problem
    }
    const why = e.message.split("\n")[0];
    console.error(`warning: ${why}; resuming from the previous checkpoint ${prev} (step ${older.meta.step})`);
    await writeFileAtomic(path, await Deno.readFile(prev));
    return older;
  }
}

/**
 * What is missing or stale among the final artefacts of a complete run (summary.json of this run,
 * completed at `step` with its metrics; the loss figure), or null when they are all there.
 */
async function staleArtefacts(
  paths: TrainResult["paths"],
  hash: string,
  step: number,
): Promise<string | null> {
  let summary: Record<string, unknown>;
  try {
    summary = JSON.parse(await Deno.readTextFile(paths.summary));
  } catch (e) {
    return e instanceof Deno.errors.NotFound ? "summary.json is missing" : "summary.json is unreadable";
  }
  if (
    summary.status !== "completed" || summary.step !== step || summary.configHash !== hash || !summary.metrics
  ) {
    return `summary.json is stale (status ${JSON.stringify(summary.status)}, step ${summary.step})`;
  }
  const svg = (summary.paths as Record<string, string> | undefined)?.figureSvg;
  if (!svg || !exists(svg)) return "the loss figure is missing";
  return null;
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
async function evaluateRun(r: Trained, signal?: AbortSignal): Promise<EvalMetrics> {
  const { config, model, state } = r, step = state.step;
  await faultPoint("evaluate");
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
    await faultPoint("probe");
    const p = await trainProbe(source, {
      signal,
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
    signal,
    augment: config.augment,
    batchSize,
    seed,
    cleanLabels: r.cleanLabels,
  });
  const te = await evaluateError(encoder, head, r.test, { augment: false, batchSize, signal });
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

/** Creates the run folder, naming `--out` in a one-line error when that is impossible. */
async function makeRunDir(out: string): Promise<void> {
  try {
    await Deno.mkdir(out, { recursive: true });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists || e instanceof Deno.errors.NotADirectory) {
      throw new FileWriteError(out, new Error(`--out ${out} is not a folder (a file is in the way)`));
    }
    throw new FileWriteError(
      out,
      new Error(`--out ${out}: cannot create the run folder: ${(e as Error).message}`),
    );
  }
  if (!Deno.statSync(out).isDirectory) {
    throw new FileWriteError(out, new Error(`--out ${out} is not a folder (a file is in the way)`));
  }
}

/** A run folder opened and locked: its paths, a resume (or a repair of a complete run). */
interface Opened {
  paths: TrainResult["paths"];
  resumeCommand: string;
  hash: string;
  resumed: RawCheckpoint | null;
  /** Why the finish phase of a complete run is redone (null: train). */
  repair: string | null;
  lock: RunLock;
}

/**
 * Checks the config, creates and locks the run folder (removing the temporary files of a killed
 * run), checks a resume, and that the run fits the device; writes config.json. Nothing heavy yet.
 */
async function openFolder(config: TrainConfig): Promise<Opened> {
  validateTrainConfig(config);
  const out = config.out;
  await makeRunDir(out);
  const lock = RunLock.acquire(out, `deno task train --out ${shellQuote(out)}`);
  try {
    if (lock.tookOver && !config.quiet) {
      console.error(`taking over the stale lock of pid ${lock.tookOver.pid} on ${lock.tookOver.host} (gone)`);
    }
    const removed = await removeStaleTmpFiles(out);
    if (removed.length && !config.quiet) {
      console.error(`removed the unfinished temporary file(s) of a killed run: ${removed.join(", ")}`);
    }
    const paths: TrainResult["paths"] = {
      config: join(out, RUN_FILES.config),
      checkpoint: join(out, RUN_FILES.checkpoint),
      metrics: join(out, RUN_FILES.metrics),
      summary: join(out, RUN_FILES.summary),
    };
    const resumeCommand = `deno task train --out ${shellQuote(out)} --resume` +
      (config.iterations !== 100000 ? ` --iterations ${config.iterations}` : "") + " (plus the same options)";
    const checked = await checkResume(config, paths, configHash(config));
    if (checked.repair === null) {
      await initDevice();
      checkDeviceFit(config, gpu().report.limits as { maxStorageBufferBindingSize?: number });
      await saveConfig(out, config);
    }
    return { paths, resumeCommand, ...checked, lock };
  } catch (e) {
    lock.release();
    throw e;
  }
}

/** Prepares the data (and writes corruption.json) of an opened run. */
async function openRun(config: TrainConfig, opened: Opened): Promise<OpenedRun> {
  const { paths, resumeCommand, hash, resumed } = opened;
  let data: PreparedData;
  try {
    data = await prepareData(config);
  } catch (e) {
    if (isFileWriteError(e) || e instanceof DataError) throw e;
    throw new DataError((e as Error).message.split("\n")[0], { cause: e });
  }
  if (config.corruption > 0) {
    await writeCorruption(paths.corruption = join(config.out, RUN_FILES.corruption), config, data);
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
  if (resumed) {
    try {
      await state.restore({ ...resumed.meta, metadata: {}, tensors: resumed.tensors });
    } catch (e) {
      throw new CheckpointError(
        join(config.out, RUN_FILES.checkpoint),
        `does not fit this run's model: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }
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
  opened: Pick<Opened, "paths" | "resumeCommand" | "hash">,
  end: Pick<TrainResult, "status" | "step" | "metrics" | "lastLog" | "imagesPerSecond">,
  sessionSeconds: number,
  signals: StopSignals,
): Promise<TrainResult> {
  const { paths, resumeCommand, hash } = opened;
  if (end.status === "completed") await faultPoint("finish");
  // A stop request here skips the figure (a later --resume redraws it) but still writes the summary.
  if (end.status === "completed" && signals.signal === null) {
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
  return {
    status,
    outDir,
    step,
    iterations,
    metrics,
    lastLog,
    imagesPerSecond,
    paths,
    resumeCommand,
    signal: signals.signal,
  };
}

/**
 * The finish phase of a complete run again, from its final checkpoint and metrics.csv (no GPU): the
 * loss figure and summary.json, e.g. after a signal during the finish or a lost summary.
 */
async function repairFinish(
  config: TrainConfig,
  opened: Opened,
  signals: StopSignals,
): Promise<TrainResult> {
  const { paths, resumed } = opened;
  if (!config.quiet) {
    console.error(`${opened.repair}: redoing the finish phase of the complete run in ${config.out}`);
  }
  const step = resumed!.meta.step;
  let rows: Record<string, string | number>[] = [];
  try {
    rows = await readCsv(paths.metrics, { numbers: true });
  } catch (e) {
    throw new RunFileError(paths.metrics, `unreadable: ${(e as Error).message.split("\n")[0]}`, { cause: e });
  }
  const num = (v: unknown) => (typeof v === "number" ? v : undefined);
  let metrics = resumed!.meta.evaluation ?? null;
  const evalRow = rows.findLast((r) => r.step === step && typeof r.test_error === "number");
  if (!metrics && evalRow) {
    metrics = {
      step,
      trainError: num(evalRow.train_error)!,
      trainErrorClean: num(evalRow.train_error_clean) ?? num(evalRow.train_error)!,
      testError: num(evalRow.test_error)!,
      ...(num(evalRow.probe_loss) !== undefined ? { probeLoss: num(evalRow.probe_loss) } : {}),
    };
  }
  if (!metrics) throw new RunFileError(paths.metrics, `no final evaluation row at step ${step}`);
  const last = rows.at(-1) as unknown as MetricsRow | undefined;
  const ips = rows.findLast((r) => typeof r.images_per_s === "number")?.images_per_s as number | undefined;
  const end = {
    status: "completed" as const,
    step,
    metrics,
    lastLog: last ?? null,
    imagesPerSecond: ips ?? 0,
  };
  return await finishRun(config, opened, end, 0, signals);
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
  // Signals are honoured from the start to the end: startup, training, checkpoint writes, the
  // evaluation and probe, and the finish phase.
  using signals = new StopSignals({ quiet: config.quiet });
  const opened = await openFolder(config);
  using _lock = opened.lock;
  if (opened.repair !== null) return await repairFinish(config, opened, signals);
  await faultPoint("startup");
  if (signals.signal !== null) return await stoppedAtStartup(config, opened, signals);
  const run = await openRun(config, opened);
  const { paths, resumed } = run, T = config.iterations;
  // Everything on the GPU is disposed at the end, also on early errors.
  using owned = new DisposableStack();
  const own = <D extends { dispose(): void }>(d: D): D => (owned.defer(() => disposeQuietly(d)), d);
  const built = await buildRun(config, run, own);
  const { model, classifier, state } = built;
  let csv: CsvLogger;
  try {
    csv = await CsvLogger.open(paths.metrics, {
      columns: METRIC_COLUMNS,
      ...(resumed ? { resumeAfterStep: state.step, maxRows: state.metrics.csvRows } : {}),
    });
  } catch (e) {
    if (isFileWriteError(e)) throw e;
    const msg = (e as Error).message.split("\n")[0].replace(/^CsvLogger: /, "").replace(
      `${paths.metrics}: `,
      "",
    );
    throw new RunFileError(paths.metrics, msg, { cause: e });
  }
  owned.defer(() => csv.close());
  if (resumed && csv.rowCount !== state.metrics.csvRows) {
    throw new RunFileError(
      paths.metrics,
      `has ${csv.rowCount} rows up to step ${state.step}, but the checkpoint (step ${state.step}) was ` +
        `written after ${state.metrics.csvRows}: the file was truncated or edited`,
    );
  }
  if (signals.signal !== null) return await stoppedAtStartup(config, opened, signals);
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
    const m = await evaluateRun(built, signals.abortSignal);
    hooks.onEval?.(m);
    return m;
  };
  const metadata = checkpointMetadata(config, run.hash, run.info);
  const loop = new TrainLoop<EvalMetrics>({
    state,
    iterations: T,
    step: trainStep(built),
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
      metadata,
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
      signals.notice =
        "stopping the evaluation (the checkpoint of the last step is written; --resume evaluates)";
      try {
        metrics = await evaluate();
      } catch (e) {
        if (!(e instanceof StopRequestedError)) throw e;
        status = "interrupted";
      }
    }
    if (status === "completed" && metrics) {
      const lastLr = polynomialLr(config.lr, Math.max(0, state.step - 1), T, config.lrPower);
      const { train_error, test_error, ...rest } = evalColumns(config, metrics);
      const elapsed_s = loop.elapsed();
      logRow({ step: state.step, lr: Math.fround(lastLr), train_error, test_error, elapsed_s, ...rest });
      metadata.evaluation = JSON.stringify(metrics);
      await loop.save(true);
      signals.notice = "the run is complete; writing its summary";
      if (hooks.onFinish) {
        const head = (state.modules[PROBE_PREFIX] as LinearClassifier | null) ?? classifier;
        model.eval();
        await hooks.onFinish({ model, head, train: built.train, test: built.test, config });
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
    csv.close();
  }
  const sessionSeconds = loop.sessionSeconds();
  const imagesPerSecond = ((state.step - loop.startStep) * config.batch) / Math.max(1e-9, sessionSeconds);
  const end = { status, step: state.step, metrics, lastLog: lastLog as MetricsRow | null, imagesPerSecond };
  return await finishRun(config, run, end, sessionSeconds, signals);
}

/** A stop request before the first step: nothing trained, nothing to checkpoint. */
async function stoppedAtStartup(
  config: TrainConfig,
  opened: Opened,
  signals: StopSignals,
): Promise<TrainResult> {
  const step = opened.resumed?.meta.step ?? 0;
  const end = { status: "interrupted" as const, step, metrics: null, lastLog: null, imagesPerSecond: 0 };
  return await finishRun(config, opened, end, 0, signals);
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
