/**
 * Learning-rate schedules: functions of the iteration t (0-based) returning the learning rate.
 *
 * @module
 */

/** A learning-rate schedule: the rate at iteration `t` (0-based). */
export type Schedule = (t: number) => number;

/**
 * `base·(1 − t/T)^power` (the paper's schedule, power 5; its code calls it "exponential").
 * `t` is clamped to [0, T], so the rate is 0 from t = T on.
 */
export function polynomialLr(base: number, t: number, T: number, power: number): number {
  if (!(T > 0)) throw new RangeError(`polynomialLr: T must be positive, got ${T}`);
  const s = Math.min(Math.max(t, 0), T) / T;
  return base * Math.pow(1 - s, power);
}

/** `base·gamma^t`. */
export function exponentialLr(base: number, t: number, gamma: number): number {
  return base * Math.pow(gamma, t);
}

/** `base` at every iteration (the `t` argument is ignored). */
export function constantLr(base: number, _t = 0): number {
  return base;
}

/** The schedule `t ↦ base·(1 − t/T)^power`. */
export function polynomialSchedule(base: number, T: number, power: number): Schedule {
  return (t) => polynomialLr(base, t, T, power);
}

/** The schedule `t ↦ base·gamma^t`. */
export function exponentialSchedule(base: number, gamma: number): Schedule {
  return (t) => exponentialLr(base, t, gamma);
}

/** The schedule `t ↦ base`. */
export function constantSchedule(base: number): Schedule {
  return () => base;
}
