/**
 * `TrainState`: everything a training run is made of at a step — the modules' parameters and buffers,
 * the optimiser's momentum and step count, the step, the generators' states and the metric bookkeeping
 * — saved whole into one checkpoint and restored whole from it, so a resumed run continues exactly.
 * @module
 */
import type { Tensor } from "../engine/tensor.ts";
import type { SGD } from "../engine/optim/sgd.ts";
import type { Module } from "../models/module.ts";
import {
  type CheckpointFile,
  MOMENTUM_PREFIX,
  momentumFor,
  momentumTensors,
  readCheckpointFile,
  stateDictFrom,
  writeCheckpoint,
} from "./checkpoint.ts";

/** Anything with a plain-data state: generators, samplers. */
export interface Stateful {
  /** Plain-data state (JSON-serialisable). */
  getState(): unknown;
  /** Restores a state from {@link getState}. */
  // deno-lint-ignore no-explicit-any
  setState(state: any): void;
}

/** The metric bookkeeping a resumed run continues from. */
export interface MetricsState {
  /** Data rows of the metrics CSV written up to the checkpoint. */
  csvRows: number;
  /** Wall-clock seconds of training so far (informational only; never affects the trajectory). */
  elapsedSeconds: number;
  /** Step of the last metrics row with a loss. */
  lastLogStep: number;
  /** Losses of the steps after `lastLogStep` (float32 values), for the next row's mean. */
  pendingLosses: number[];
  /**
   * An evaluation (and its log row) a stop interrupted at `step`, with that step's monitored values:
   * the resumed loop redoes it before its first step. Null when none.
   */
  pendingEval?: { step: number; values: number[] } | null;
}

/**
 * The `state` metadata entry of a checkpoint: each generator's state under its name, the optimiser's
 * step count, then the metric bookkeeping.
 */
export type SavedState = Record<string, unknown> & { optimizerSteps: number } & Partial<MetricsState>;

/** What {@link TrainState} is made of. */
export interface TrainStateInit {
  /**
   * Modules by checkpoint prefix: `""` for the model, e.g. `"classifier."` for a head. A null slot is
   * reserved (its prefix is not read into the model) and may be filled later (e.g. a probe).
   */
  modules: Record<string, Module | null>;
  /** The optimiser (its parameters must belong to the modules); null: nothing is optimised. */
  optimizer?: SGD | null;
  /** Generators and samplers by name (saved in the `state` entry under these names). */
  rngs?: Record<string, Stateful>;
  /** The step to start from (default 0). */
  step?: number;
}

/** Options of {@link TrainState.save}. */
export interface SaveStateOptions {
  /** The `format` metadata value. */
  format: string;
  /** Further metadata strings (e.g. the run's config). */
  metadata?: Record<string, string>;
  /** True for the last checkpoint of a completed run. */
  final?: boolean;
}

/** One training run's state at a step, checkpointed whole (see the module doc). */
export class TrainState {
  /** Completed steps. */
  step: number;
  /** Modules by checkpoint prefix (see {@link TrainStateInit.modules}). */
  readonly modules: Record<string, Module | null>;
  /** The optimiser, if any. */
  readonly optimizer: SGD | null;
  /** Checkpoint names of the optimiser's parameters, in its order. */
  readonly optimizerNames: readonly string[];
  /** Generators and samplers by name. */
  readonly rngs: Record<string, Stateful>;
  /** Metric bookkeeping (kept by the loop). */
  metrics: MetricsState;

  /** A state at `init.step` (default 0) with empty metric bookkeeping. */
  constructor(init: TrainStateInit) {
    this.modules = init.modules;
    this.optimizer = init.optimizer ?? null;
    this.rngs = init.rngs ?? {};
    this.step = init.step ?? 0;
    this.metrics = {
      csvRows: 0,
      elapsedSeconds: 0,
      lastLogStep: this.step,
      pendingLosses: [],
      pendingEval: null,
    };
    const names = new Map<Tensor, string>();
    for (const [prefix, m] of Object.entries(this.modules)) {
      for (const [n, t] of m?.namedParameters() ?? []) names.set(t, prefix + n);
    }
    this.optimizerNames = (this.optimizer?.params ?? []).map((p, k) => {
      const name = names.get(p);
      if (name === undefined) throw new Error(`TrainState: optimiser parameter #${k} belongs to no module`);
      return name;
    });
  }

  /** Every module tensor and momentum buffer under its checkpoint name, in file order. */
  namedTensors(): [string, Tensor][] {
    const named: [string, Tensor][] = [];
    for (const [prefix, m] of Object.entries(this.modules)) {
      for (const [n, t] of m?.namedTensors() ?? []) named.push([prefix + n, t]);
    }
    const opt = this.optimizer;
    opt?.momentumBuffers.forEach((b, k) => named.push([MOMENTUM_PREFIX + this.optimizerNames[k], b]));
    return named;
  }

  /** The `state` entry of a checkpoint of this state. */
  savedState(): SavedState {
    const rngs: Record<string, unknown> = {};
    for (const [name, r] of Object.entries(this.rngs)) rngs[name] = r.getState();
    return {
      ...rngs,
      optimizerSteps: this.optimizer?.steps ?? 0,
      ...this.metrics,
      pendingLosses: [...this.metrics.pendingLosses],
    };
  }

  /**
   * Writes the whole state to `path` (atomically, one readback). Throws `NonFiniteCheckpointError`,
   * leaving any existing file untouched, when a value is not finite.
   */
  async save(path: string, options: SaveStateOptions): Promise<void> {
    await writeCheckpoint(path, {
      named: this.namedTensors(),
      format: options.format,
      step: this.step,
      metadata: options.metadata,
      state: this.savedState(),
      final: options.final ?? false,
    });
  }

  /**
   * Restores the whole state from a checkpoint read by `readCheckpointFile` (or read from `path`):
   * module weights and buffers (every non-null module, strictly), momentum and step count, the
   * generators, the step and the metric bookkeeping.
   */
  async restore(from: CheckpointFile | string, format?: string): Promise<CheckpointFile> {
    const file = typeof from === "string" ? await readCheckpointFile(from, format) : from;
    const { tensors } = file;
    const saved = file.state as SavedState;
    const others = [...Object.keys(this.modules).filter((p) => p !== ""), MOMENTUM_PREFIX];
    for (const [prefix, m] of Object.entries(this.modules)) {
      m?.loadStateDict(stateDictFrom(tensors, prefix, others));
    }
    const opt = this.optimizer;
    if (opt) {
      opt.loadStateDict({
        step: saved.optimizerSteps,
        momentum: opt.momentumBuffers.length
          ? momentumFor(opt, this.optimizerNames, momentumTensors(tensors))
          : null,
      });
    }
    for (const [name, r] of Object.entries(this.rngs)) r.setState(saved[name]);
    this.step = file.step;
    this.metrics = {
      csvRows: saved.csvRows ?? 0,
      elapsedSeconds: saved.elapsedSeconds ?? 0,
      lastLogStep: saved.lastLogStep ?? file.step,
      pendingLosses: [...(saved.pendingLosses ?? [])],
      pendingEval: saved.pendingEval ?? null,
    };
    return file;
  }
}
