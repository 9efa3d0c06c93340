/**
 * Seeded, serialisable random numbers and batch samplers.
 *
 * The generator is xoshiro128** 1.1 (Blackman & Vigna), 128 bits of state, seeded through
 * SplitMix32. Its whole state (four uint32 words plus a cached Box–Muller spare) can be
 * exported as plain JSON data and restored, so a run resumed from a checkpoint draws exactly
 * the same numbers as an uninterrupted one.
 * @module
 */

/** The plain-data state of an {@link Rng}; JSON round-trips it exactly. */
export type RngState = {
  /** Always `"xoshiro128**"`. */
  algorithm: "xoshiro128**";
  /** The four 32-bit state words, as unsigned integers. */
  s: [number, number, number, number];
  /** The cached second normal deviate of Box–Muller, or null. */
  spare: number | null;
};

const TWO32 = 4294967296;

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** SplitMix32 step: returns [next counter, output]. Used only for seeding. */
function splitmix32(a: number): [number, number] {
  a = (a + 0x9e3779b9) | 0;
  let z = a;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  z = z ^ (z >>> 15);
  return [a, z >>> 0];
}

/** A seeded xoshiro128** generator with exportable state. */
export class Rng {
  #s = new Uint32Array(4);
  #spare: number | null = null;

  /**
   * A generator seeded by `seed`.
   * @param seed any finite number; integers up to 2^53 are all distinct seeds
   *   (the low and high 32-bit halves are both mixed in).
   */
  constructor(seed = 0) {
    if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be finite, got ${seed}`);
    const x = Math.floor(Math.abs(seed));
    const lo = x >>> 0;
    const hi = Math.floor(x / TWO32) >>> 0;
    let a = (lo ^ Math.imul(hi ^ (seed < 0 ? 0x5bd1e995 : 0), 0x85ebca6b)) | 0;
    for (let i = 0; i < 4; i++) {
      const [na, z] = splitmix32(a);
      a = na;
      this.#s[i] = z;
    }
    if ((this.#s[0] | this.#s[1] | this.#s[2] | this.#s[3]) === 0) this.#s[0] = 1;
  }

  /** A generator restored from a state produced by {@link Rng.getState}. */
  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }

  /** Next raw output: a uniform unsigned 32-bit integer. */
  nextU32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A uniform double in [lo, hi) (default [0,1)), with 53 random bits. */
  uniform(lo = 0, hi = 1): number {
    const a = this.nextU32() >>> 5, b = this.nextU32() >>> 6;
    const u = (a * 67108864 + b) / 9007199254740992;
    return lo + (hi - lo) * u;
  }

  /**
   * A uniform integer in [0, n), unbiased (rejection sampling) for n ≤ 2^32.
   * For larger n (up to 2^53) uses `floor(uniform()·n)`.
   */
  randInt(n: number): number {
    if (!(n >= 1) || !Number.isInteger(n)) throw new Error(`randInt: n must be a positive integer, got ${n}`);
    if (n > TWO32) return Math.floor(this.uniform() * n);
    const limit = TWO32 - (TWO32 % n);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return x % n;
  }

  /** A normal deviate N(mean, std²) by the Box–Muller transform (the spare value is cached). */
  normal(mean = 0, std = 1): number {
    if (this.#spare !== null) {
      const z = this.#spare;
      this.#spare = null;
      return mean + std * z;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const th = 2 * Math.PI * v;
    this.#spare = r * Math.sin(th);
    return mean + std * r * Math.cos(th);
  }

  /** Shuffles `a` in place (Fisher–Yates) and returns it. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.randInt(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** A new, independent-looking generator seeded from four outputs of this one. */
  fork(): Rng {
    const r = new Rng(0);
    let a = this.nextU32() ^ Math.imul(this.nextU32(), 0x27d4eb2f);
    a ^= Math.imul(this.nextU32(), 0x165667b1) ^ this.nextU32();
    const s: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [na, z] = splitmix32(a);
      a = na;
      s.push(z);
    }
    if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1;
    r.setState({ algorithm: "xoshiro128**", s: s as [number, number, number, number], spare: null });
    return r;
  }

  /** The full state as plain data (a copy). */
  getState(): RngState {
    const s = this.#s;
    return { algorithm: "xoshiro128**", s: [s[0], s[1], s[2], s[3]], spare: this.#spare };
  }

  /** Restores a state from {@link Rng.getState}; validates it. */
  setState(state: RngState): void {
    if (!state || state.algorithm !== "xoshiro128**") {
      throw new Error(`Rng.setState: unknown algorithm ${JSON.stringify(state?.algorithm)}`);
    }
    if (!Array.isArray(state.s) || state.s.length !== 4) throw new Error("Rng.setState: s must have 4 words");
    for (const w of state.s) {
      if (!Number.isInteger(w) || w < 0 || w >= TWO32) throw new Error(`Rng.setState: bad state word ${w}`);
    }
    if ((state.s[0] | state.s[1] | state.s[2] | state.s[3]) === 0) {
      throw new Error("Rng.setState: all-zero state is invalid for xoshiro128**");
    }
    if (state.spare !== null && typeof state.spare !== "number") {
      throw new Error("Rng.setState: spare must be a number or null");
    }
    this.#s.set(state.s);
    this.#spare = state.spare;
  }

  /** An independent copy with the same state. */
  clone(): Rng {
    return Rng.fromState(this.getState());
  }
}

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
