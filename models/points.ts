/**
 * Free point configurations Z = (z_1, …, z_n) for the toy problems (Fig. 1, Fig. 6): the "ideal
 * encoder" of the theory, where the points themselves are the trainable parameters.
 *
 * @module
 */
import type { Tensor } from "../engine/tensor.ts";
import { tensor } from "../engine/tensor.ts";
import { Module } from "./module.ts";
import type { Rng } from "../engine/rng.ts";
import { toRng } from "./init.ts";

/** How the initial points are drawn. */
export type PointInit = "sphere" | "disc" | "normal";

/** Options of {@link PointConfiguration}. */
export interface PointConfigurationOptions {
  /** Number of points. */
  n: number;
  /** Dimension h of each point. */
  dim: number;
  /**
   * `sphere`: uniform on the sphere of radius `radius`; `disc`: uniform in the ball of radius
   * `radius` (the "unit disc" of Fig. 1 in 2-D); `normal`: i.i.d. N(0, radius²) coordinates.
   * Default `sphere`.
   */
  init?: PointInit;
  /** Radius (or standard deviation for `normal`), default 1. */
  radius?: number;
  /** Seed (default 0). */
  seed?: number;
}

function gaussianRow(dim: number, rng: Rng): number[] {
  for (;;) {
    const v = Array.from({ length: dim }, () => rng.normal());
    const norm = Math.hypot(...v);
    if (norm > 1e-12) return v.map((x) => x / norm);
  }
}

/** Host values of the initial points, row-major [n, dim] (float64, deterministic given the seed). */
export function initialPoints(options: PointConfigurationOptions): Float64Array {
  const { n, dim, init = "sphere", radius = 1 } = options;
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(dim) || dim < 1) {
    throw new RangeError(`PointConfiguration: n and dim must be positive integers, got n=${n}, dim=${dim}`);
  }
  if (!(radius > 0) || !Number.isFinite(radius)) {
    throw new RangeError(`PointConfiguration: radius must be positive and finite, got ${radius}`);
  }
  const rng = toRng(options.seed ?? 0);
  const out = new Float64Array(n * dim);
  for (let i = 0; i < n; i++) {
    let row: number[];
    if (init === "normal") {
      row = Array.from({ length: dim }, () => rng.normal(0, radius));
    } else if (init === "sphere") {
      row = gaussianRow(dim, rng).map((x) => x * radius);
    } else if (init === "disc") {
      const r = radius * Math.pow(rng.uniform(), 1 / dim); // uniform in the ball
      row = gaussianRow(dim, rng).map((x) => x * r);
    } else {
      throw new RangeError(`PointConfiguration: unknown init "${init}"`);
    }
    out.set(row, i * dim);
  }
  return out;
}

/** A trainable [n, dim] point configuration (parameter `points`); `forward()` returns it. */
export class PointConfiguration extends Module {
  /** The points [n, dim] (a parameter). */
  readonly points: Tensor;
  /** Number of points. */
  readonly n: number;
  /** Dimension. */
  readonly dim: number;

  /** Draws the initial points (see {@link initialPoints}); throws RangeError on invalid sizes. */
  constructor(options: PointConfigurationOptions) {
    super();
    this.n = options.n;
    this.dim = options.dim;
    this.points = this.registerParameter("points", tensor(initialPoints(options), [options.n, options.dim]));
  }

  /** The points [n, dim] themselves (gradients flow to them). */
  forward(): Tensor {
    return this.points;
  }
}
