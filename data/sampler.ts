/**
 * Batch samplers with serialisable state, drawing from the seeded generator of `engine/rng.ts` (re-exported
 * here for existing imports).
 * @module
 */
import { Rng, type RngState } from "../engine/rng.ts";

export { Rng, type RngState };

/** Serialisable state of a batch sampler (plain data; JSON round-trips it exactly). */
export type SamplerState =
  | {
    /** I.i.d. sampler. */
    kind: "iid";
    /** Dataset size. */
    n: number;
    /** Batch size. */
    batchSize: number;
    /** Batches drawn so far. */
    step: number;
    /** Generator state. */
    rng: RngState;
  }
  | {
    /** Epoch (shuffle, without replacement) sampler. */
    kind: "epoch";
    /** Dataset size. */
    n: number;
    /** Batch size. */
    batchSize: number;
    /** Batches drawn so far. */
    step: number;
    /** Current epoch (0-based). */
    epoch: number;
    /** Position inside the current permutation. */
    pos: number;
    /** Generator state just before the current epoch's permutation was drawn. */
    shuffleRng: RngState;
    /** Current generator state. */
    rng: RngState;
  };

/** A source of index batches with exact save/restore. */
export interface BatchSampler {
  /** Dataset size. */
  readonly n: number;
  /** Indices per batch. */
  readonly batchSize: number;
  /** Batches drawn so far. */
  readonly step: number;
  /** The next batch of `batchSize` indices in [0, n); written into `out` when given. */
  next(out?: Int32Array): Int32Array;
  /** Plain-data state for a checkpoint. */
  getState(): SamplerState;
  /** Restores a state from {@link BatchSampler.getState} (also restores the generator). */
  setState(state: SamplerState): void;
}

function checkNB(n: number, b: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`sampler: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(b) || b < 1) {
    throw new Error(`sampler: batchSize must be a positive integer, got ${b}`);
  }
}

function outBuf(out: Int32Array | undefined, b: number): Int32Array {
  if (!out) return new Int32Array(b);
  if (out.length !== b) throw new Error(`sampler: out has length ${out.length}, expected ${b}`);
  return out;
}

/**
 * Draws each batch as `batchSize` indices i.i.d. uniform on [0, n) **with replacement**
 * (a multiset: duplicates happen), as in the paper's protocol. No epochs.
 *
 * When given an {@link Rng} the sampler uses (and advances) it; `setState` also resets it.
 */
export class IidSampler implements BatchSampler {
  /** The generator in use. */
  readonly rng: Rng;
  #step = 0;

  /** Dataset size. */
  readonly n: number;
  /** Indices per batch. */
  readonly batchSize: number;

  /**
   * A sampler over [0, n) with batches of `batchSize`.
   * @param rng a generator (shared, advanced in place) or a seed.
   */
  constructor(n: number, batchSize: number, rng: Rng | number = 0) {
    checkNB(n, batchSize);
    this.n = n;
    this.batchSize = batchSize;
    this.rng = typeof rng === "number" ? new Rng(rng) : rng;
  }

  /** Batches drawn so far. */
  get step(): number {
    return this.#step;
  }

  /** The next batch: `batchSize` i.i.d. uniform indices. */
  next(out?: Int32Array): Int32Array {
    const o = outBuf(out, this.batchSize);
    for (let i = 0; i < this.batchSize; i++) o[i] = this.rng.randInt(this.n);
    this.#step++;
    return o;
  }

  /** Plain-data state. */
  getState(): SamplerState {
    return { kind: "iid", n: this.n, batchSize: this.batchSize, step: this.#step, rng: this.rng.getState() };
  }

  /** Restores a state; n and batchSize must match. */
  setState(state: SamplerState): void {
    if (state.kind !== "iid") throw new Error(`IidSampler.setState: state is of kind ${state.kind}`);
    if (state.n !== this.n || state.batchSize !== this.batchSize) {
      throw new Error(
        `IidSampler.setState: state is for n=${state.n}, b=${state.batchSize}; sampler has n=${this.n}, b=${this.batchSize}`,
      );
    }
    this.rng.setState(state.rng);
    this.#step = state.step;
  }
}

/**
 * Shuffles [0, n) once per epoch and hands out consecutive slices (without replacement
 * inside an epoch). A batch that crosses an epoch boundary is completed from the next
 * epoch's permutation, so every batch has `batchSize` indices.
 *
 * The state stores the generator state from before the current permutation, so it stays
 * small (no permutation array) and the permutation is regenerated on restore.
 */
export class EpochSampler implements BatchSampler {
  /** The generator in use. */
  readonly rng: Rng;
  #perm: Int32Array;
  #pos = 0;
  #epoch = 0;
  #step = 0;
  #shuffleState: RngState;

  /** Dataset size. */
  readonly n: number;
  /** Indices per batch. */
  readonly batchSize: number;

  /**
   * A sampler over [0, n) with batches of `batchSize`.
   * @param rng a generator (shared, advanced in place) or a seed.
   */
  constructor(n: number, batchSize: number, rng: Rng | number = 0) {
    checkNB(n, batchSize);
    this.n = n;
    this.batchSize = batchSize;
    this.rng = typeof rng === "number" ? new Rng(rng) : rng;
    this.#perm = new Int32Array(n);
    this.#shuffleState = this.rng.getState();
    this.#reshuffle();
  }

  #reshuffle(): void {
    this.#shuffleState = this.rng.getState();
    for (let i = 0; i < this.n; i++) this.#perm[i] = i;
    this.rng.shuffle(this.#perm);
    this.#pos = 0;
  }

  /** Batches drawn so far. */
  get step(): number {
    return this.#step;
  }

  /** Current epoch (0-based). */
  get epoch(): number {
    return this.#epoch;
  }

  /** The next batch of indices. */
  next(out?: Int32Array): Int32Array {
    const o = outBuf(out, this.batchSize);
    for (let i = 0; i < this.batchSize; i++) {
      if (this.#pos >= this.n) {
        this.#epoch++;
        this.#reshuffle();
      }
      o[i] = this.#perm[this.#pos++];
    }
    this.#step++;
    return o;
  }

  /** Plain-data state. */
  getState(): SamplerState {
    return {
      kind: "epoch",
      n: this.n,
      batchSize: this.batchSize,
      step: this.#step,
      epoch: this.#epoch,
      pos: this.#pos,
      shuffleRng: structuredClone(this.#shuffleState),
      rng: this.rng.getState(),
    };
  }

  /** Restores a state; n and batchSize must match. */
  setState(state: SamplerState): void {
    if (state.kind !== "epoch") throw new Error(`EpochSampler.setState: state is of kind ${state.kind}`);
    if (state.n !== this.n || state.batchSize !== this.batchSize) {
      throw new Error(
        `EpochSampler.setState: state is for n=${state.n}, b=${state.batchSize}; sampler has n=${this.n}, b=${this.batchSize}`,
      );
    }
    if (!Number.isInteger(state.pos) || state.pos < 0 || state.pos > this.n) {
      throw new Error(`EpochSampler.setState: bad pos ${state.pos}`);
    }
    this.rng.setState(state.shuffleRng);
    this.#reshuffle();
    this.rng.setState(state.rng);
    this.#pos = state.pos;
    this.#epoch = state.epoch;
    this.#step = state.step;
  }
}

/** Makes an {@link IidSampler} (`"iid"`, the paper's protocol) or an {@link EpochSampler} (`"epoch"`). */
export function makeSampler(
  kind: "iid" | "epoch",
  n: number,
  batchSize: number,
  rng: Rng | number = 0,
): BatchSampler {
  if (kind === "iid") return new IidSampler(n, batchSize, rng);
  if (kind === "epoch") return new EpochSampler(n, batchSize, rng);
  throw new Error(`makeSampler: unknown kind ${kind}`);
}
