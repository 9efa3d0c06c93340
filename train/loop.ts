/**
 * The training loop: step → flush → throttle, and at log, evaluation and checkpoint points a readback
 * of what is logged.
 *
 * Each step records the caller's work (forward, loss, backward, optimiser update) inside `tidy`, then a
 * one-invocation monitor kernel that keeps the step's scalars (loss first) in a ring buffer of
 * `logEvery` steps on the GPU and the first step whose loss is not finite; then one submit. Nothing is
 * read back inside a step: the ring is read at log points (every `logEvery` steps), at checkpoints and
 * on a stop request. The loop adds no wall-clock input to the trajectory, so with a {@link TrainState}
 * that holds every generator an interrupted and resumed run reproduces an uninterrupted one exactly.
 * @module
 */
import { gpu } from "../engine/gpu.ts";
import type { Tensor } from "../engine/tensor.ts";
import { tidy } from "../engine/scope.ts";
import { Throttle } from "../engine/throttle.ts";
import { StepMonitor } from "../engine/ops/monitor.ts";
import { NonFiniteCheckpointError } from "./checkpoint.ts";
import type { TrainState } from "./state.ts";
import { faultPoint, StopRequestedError, StopSignals } from "./signals.ts";

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
    /** What to try (default: a smaller learning rate). */
    hint = "try a smaller learning rate",
  ) {
    super(
      `training diverged at step ${step}: ${detail ?? `the loss is not finite at step ${step}`}; ` +
        (checkpoint
          ? `the last good checkpoint (step ${checkpointStep}) is ${checkpoint}`
          : "no checkpoint had been written") +
        ` (${hint})`,
    );
    this.name = "NonFiniteLossError";
  }
}

/** What the loop reports at a log point. */
export interface LogRecord<E> {
  /** Completed steps. */
  step: number;
  /** The last step's monitored scalars (the loss first). */
  values: number[];
  /** Mean loss over the steps since the previous log record. */
  lossMean: number;
  /** Samples per second since the previous log record (or this session's start). */
  samplesPerSecond: number;
  /** Seconds of training so far (over all resumed sessions). */
  elapsedSeconds: number;
  /** The evaluation of this step, when one ran. */
  evaluation: E | null;
}

/** Where and how checkpoints are written. */
export interface CheckpointOptions {
  /** The checkpoint file (rewritten atomically each time). */
  path: string;
  /** Write one every this many steps (0 or absent: only on a stop and through {@link TrainLoop.save}). */
  every?: number;
  /** The `format` metadata value (default "supcon-webgpu/train/1"). */
  format?: string;
  /** Further metadata strings (e.g. the run's config). */
  metadata?: Record<string, string>;
  /** True when `state` was restored from `path` (a checkpoint of its step is already there). */
  resumed?: boolean;
}

/** A progress display (e.g. experiments/lib/progress.ts `Progress`). */
export interface ProgressSink {
  /** One more step done. */
  tick(n: number): void;
  /** The loop ended. */
  done(): void;
}

/** Options of {@link TrainLoop}. */
export interface TrainLoopOptions<E = unknown> {
  /** The state trained (its `step` advances). */
  state: TrainState;
  /** Train until `state.step` reaches this. */
  iterations: number;
  /**
   * Records one step (called inside `tidy` with the number of steps completed before it) and returns the
   * scalars to monitor, the loss first (f32 tensors; the first element of each is read).
   */
  step(step: number): Tensor[];
  /** Scalars monitored per step (default 1: the loss). */
  monitorSlots?: number;
  /** Log every this many steps (and after the last) (default 100). */
  logEvery?: number;
  /** Evaluate every this many steps before the last (0 or absent: never inside the loop). */
  evalEvery?: number;
  /** Evaluates the state at `step` (the loop reads nothing for it). */
  evaluate?(step: number): Promise<E>;
  /** Called at each log point, also for the last rows before a divergence. */
  onLog?(record: LogRecord<E>): void | Promise<void>;
  /**
   * Polled after every step and after each evaluation: true stops the run (status "stopped"). An
   * evaluation that throws a `StopRequestedError` (a signal during it) stops the run too: the
   * checkpoint of its step notes the evaluation as pending, and the resumed run redoes it first.
   */
  shouldStop?(step: number): boolean;
  /** Checkpoints (absent: none). */
  checkpoint?: CheckpointOptions;
  /** The metrics file, synced before each checkpoint; its row count is saved in the state. */
  metrics?: { readonly rowCount: number; sync(): void } | null;
  /** Stop signals (default: SIGINT/SIGTERM listeners installed for the duration of `run()`). */
  signals?: StopSignals;
  /** Progress display, ticked every step. */
  progress?: ProgressSink;
  /** Samples per step, for `samplesPerSecond` (default 1). */
  samplesPerStep?: number;
  /** The hint of a {@link NonFiniteLossError}. */
  divergenceHint?: string;
}

/** How {@link TrainLoop.run} ended. */
export type LoopStatus = "completed" | "interrupted" | "stopped";

/** The default checkpoint format. */
export const TRAIN_CHECKPOINT_FORMAT = "supcon-webgpu/train/1";

/** A training loop over a {@link TrainState} (see the module doc). */
export class TrainLoop<E = unknown> {
  /** The options. */
  readonly options: TrainLoopOptions<E>;
  /** Step of the last checkpoint written or resumed from (0: none). */
  checkpointStep: number;
  /** Whether a checkpoint file holds this run. */
  checkpointWritten: boolean;
  /** `performance.now()` when the loop was made (this session's clock). */
  readonly sessionStart = performance.now();
  /** The step this session started from. */
  readonly startStep: number;
  #elapsedBefore: number;

  /** A loop over `options.state` from its current step. */
  constructor(options: TrainLoopOptions<E>) {
    this.options = options;
    const resumed = options.checkpoint?.resumed ?? false;
    this.startStep = options.state.step;
    this.checkpointStep = resumed ? options.state.step : 0;
    this.checkpointWritten = resumed;
    this.#elapsedBefore = options.state.metrics.elapsedSeconds;
  }

  /** Seconds of this session. */
  sessionSeconds(): number {
    return (performance.now() - this.sessionStart) / 1000;
  }

  /** Seconds of training so far, over all sessions. */
  elapsed(): number {
    return this.#elapsedBefore + this.sessionSeconds();
  }

  /**
   * Writes the whole state to the checkpoint (syncing the metrics file first). Non-finite weights
   * throw a {@link NonFiniteLossError} and leave the previous checkpoint in place.
   */
  async save(final = false): Promise<void> {
    const { state, checkpoint, metrics } = this.options;
    if (!checkpoint) return;
    metrics?.sync();
    state.metrics.csvRows = metrics?.rowCount ?? state.metrics.csvRows;
    state.metrics.elapsedSeconds = this.elapsed();
    try {
      await state.save(checkpoint.path, {
        format: checkpoint.format ?? TRAIN_CHECKPOINT_FORMAT,
        metadata: checkpoint.metadata,
        final,
      });
      this.checkpointStep = state.step;
      this.checkpointWritten = true;
    } catch (e) {
      if (!(e instanceof NonFiniteCheckpointError)) throw e;
      const names = `${e.names.slice(0, 3).join(", ")}${e.names.length > 3 ? ", …" : ""}`;
      throw this.#diverged(
        state.step,
        `the update of step ${state.step} made the weights non-finite (${names}), so no later loss can be finite`,
      );
    }
  }

  #diverged(step: number, detail?: string): NonFiniteLossError {
    return new NonFiniteLossError(
      step,
      this.checkpointWritten ? this.options.checkpoint!.path : null,
      this.checkpointStep,
      detail,
      this.options.divergenceHint,
    );
  }

  /** Trains until `iterations`, a stop signal or `shouldStop`; throws {@link NonFiniteLossError}. */
  async run(): Promise<LoopStatus> {
    const o = this.options;
    const signals = o.signals ?? new StopSignals();
    const monitor = new StepMonitor(o.logEvery ?? 100, o.monitorSlots ?? 1, o.state.step);
    try {
      return await this.#loop(monitor, signals);
    } finally {
      monitor.dispose();
      if (!o.signals) signals.dispose();
    }
  }

  async #loop(monitor: StepMonitor, signals: StopSignals): Promise<LoopStatus> {
    const o = this.options, state = o.state, metrics = state.metrics;
    const T = o.iterations, M = monitor.ring;
    const every = (n: number | undefined) => (n ?? 0) > 0 && state.step % n! === 0 && state.step < T;
    const throttle = new Throttle();
    let lastReadStep = state.step;
    let lastLogTime = performance.now();
    let status: LoopStatus = "completed";
    const pending = metrics.pendingEval;
    if (pending && pending.step === state.step && o.evaluate) {
      // The previous session was stopped during this step's evaluation: redo it, then its log row.
      const record: LogRecord<E> = {
        step: state.step,
        values: pending.values,
        lossMean: metrics.pendingLosses.reduce((a, b) => a + b, 0) / metrics.pendingLosses.length,
        samplesPerSecond: NaN,
        elapsedSeconds: this.elapsed(),
        evaluation: await o.evaluate(state.step),
      };
      await o.onLog?.(record);
      metrics.lastLogStep = state.step;
      metrics.pendingLosses = [];
      metrics.pendingEval = null;
      lastLogTime = performance.now();
    }
    while (state.step < T) {
      tidy(() => monitor.record(o.step(state.step)));
      gpu().flush();
      // In tuning mode "measure", GEMM shapes first seen in this step are timed now, between steps: from the
      // next step on they run on their measured winners (engine/tune/tuner.ts).
      if (gpu().tuner.pendingCount > 0) await gpu().tuner.measurePending();
      state.step++;
      o.progress?.tick(1);
      await throttle.tick();
      await faultPoint("step");

      const step = state.step;
      let stop = signals.signal !== null || (o.shouldStop?.(step) ?? false);
      const logNow = step % M === 0 || step === T;
      const ckptNow = o.checkpoint !== undefined &&
        (every(o.checkpoint.every) || signals.checkpointRequested);
      const evalNow = o.evaluate !== undefined && every(o.evalEvery);
      if (!(logNow || ckptNow || evalNow || stop)) continue;
      const snap = await monitor.read();
      if (snap.counter !== step) {
        throw new Error(`internal: monitor counted ${snap.counter} steps, expected ${step}`);
      }
      const losses = snap.values[0];
      for (let s = lastReadStep; s < step; s++) metrics.pendingLosses.push(losses[s % M]);
      lastReadStep = step;
      const now = performance.now();
      const record: LogRecord<E> = {
        step,
        values: snap.values.map((v) => v[(step - 1) % M]),
        lossMean: metrics.pendingLosses.reduce((a, b) => a + b, 0) / metrics.pendingLosses.length,
        samplesPerSecond: ((step - Math.max(metrics.lastLogStep, this.startStep)) * (o.samplesPerStep ?? 1)) /
          ((now - lastLogTime) / 1000),
        elapsedSeconds: this.elapsed(),
        evaluation: null,
      };
      if (snap.firstBad !== 0) {
        if (step > metrics.lastLogStep) await o.onLog?.(record);
        throw this.#diverged(snap.firstBad);
      }
      if (evalNow) {
        try {
          record.evaluation = await o.evaluate!(step);
        } catch (e) {
          if (!(e instanceof StopRequestedError)) throw e;
          metrics.pendingEval = { step, values: record.values };
          await this.save(false);
          status = "interrupted";
          break;
        }
        // The hook may ask to stop because of this very evaluation (e.g. a run that fitted its data).
        if (!stop && (o.shouldStop?.(step) ?? false)) stop = true;
      }
      if (logNow || evalNow) {
        await o.onLog?.(record);
        metrics.lastLogStep = step;
        metrics.pendingLosses = [];
        lastLogTime = performance.now();
      }
      if (ckptNow || stop) {
        await this.save(false);
        signals.checkpointRequested = false;
        // A signal during the write: the checkpoint of this step is on disk, so stop here.
        if (!stop && signals.signal !== null) stop = true;
      }
      if (stop) {
        status = signals.signal !== null ? "interrupted" : "stopped";
        break;
      }
    }
    o.progress?.done();
    return status;
  }
}
