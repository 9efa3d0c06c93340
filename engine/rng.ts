/**
 * Seeded, serialisable random numbers, in a module of their own: models (initialisation), data (samplers,
 * label corruption) and training (augmentation) all draw from it, and none owns it.
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
