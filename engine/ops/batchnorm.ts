/**
 * 2-D batch normalisation (NCHW, per channel), PyTorch semantics, optionally fused with ReLU.
 *
 * Training: batch statistics (biased variance to normalise) and in-place running-buffer updates
 * `r ← (1−m)·r + m·batch` with the unbiased variance n/(n−1) (n = N·H·W). Evaluation: the running
 * statistics. Forward: 3 dispatches in training (partial statistics, finalize + running update,
 * normalise), 2 in evaluation. Backward: 3 (partial sums, finalize dγ/dβ, apply dx).
 */
import { read, runKernel, write } from "../program.ts";
import { empty, fmtShape, ShapeError, type Tensor } from "../tensor.ts";
import { gradTarget, record } from "../autograd.ts";
import {
  bnBackwardApplyBody,
  bnBackwardFinalizeBody,
  bnBackwardPartialBody,
  bnEvalStatsBody,
  bnGeometry,
  bnLoopTrips,
  bnNormalizeBody,
  bnRunInvocations,
  bnStatsFinalizeBody,
  bnStatsPartialBody,
} from "../../shaders/batchnorm.ts";
import { grid1d, loopBudgetError } from "../../shaders/common.ts";

/** Options of {@link batchNorm2d}. */
export interface BatchNormOptions {
  /** Batch statistics and running-buffer updates (true) or running statistics (false). */
  training: boolean;
  /** Weight of the batch statistic in the running update (default 0.1, as PyTorch). */
  momentum?: number;
  /** Added to the variance (default 1e-5). */
  eps?: number;
}

function check(op: string, x: Tensor, params: Tensor[]): void {
  if (x.rank !== 4 || x.dtype !== "f32") {
    throw new ShapeError(op, `x must be an f32 NCHW tensor, got ${x.dtype}${fmtShape(x.shape)}`);
  }
  const c = x.shape[1];
  const names = ["gamma", "beta", "runningMean", "runningVar"];
  params.forEach((p, k) => {
    if (p.size !== c || p.dtype !== "f32") {
      throw new ShapeError(
        op,
        `${names[k]} must be f32 with ${c} elements for x ${fmtShape(x.shape)}, got ${fmtShape(p.shape)}`,
      );
    }
  });
}

/** The per-channel tensors of {@link batchNorm2d} (C elements each, f32). */
export interface BatchNormParams {
  /** Scale γ. */
  gamma: Tensor;
  /** Shift β. */
  beta: Tensor;
  /** Running mean (updated in place in training). */
  runningMean: Tensor;
  /** Running variance (updated in place in training). */
  runningVar: Tensor;
}

function batchNormImpl(
  op: string,
  relu: boolean,
  x: Tensor,
  { gamma, beta, runningMean, runningVar }: BatchNormParams,
  { training, momentum = 0.1, eps = 1e-5 }: BatchNormOptions,
): Tensor {
  check(op, x, [gamma, beta, runningMean, runningVar]);
  const [n, c, h, w] = x.shape;
  const geo = bnGeometry(n, c, h * w);
  const budget = loopBudgetError(bnLoopTrips(geo), `x ${fmtShape(x.shape)}`);
  if (budget) throw new ShapeError(op, budget);
  const count = n * h * w;
  if (training && count < 2) {
    throw new ShapeError(op, `training needs more than one value per channel, got x ${fmtShape(x.shape)}`);
  }
  const out = empty(x.shape);
  if (x.size === 0) return out;
  // [4, C]: mean, 1/σ, scale = γ/σ, shift = β − mean·scale (kept for the backward).
  const stats = empty([4, c]);
  if (training) {
    const partial = empty([2, c, geo.chunks]);
    runKernel({
      name: `${op}.stats`,
      bindings: [read("x", x), write("partial", partial)],
      body: bnStatsPartialBody(geo),
      workgroups: grid1d(c * geo.chunks),
    });
    runKernel({
      name: `${op}.finalize`,
      bindings: [
        read("partial", partial),
        read("gamma", gamma),
        read("beta", beta),
        write("runningMean", runningMean),
        write("runningVar", runningVar),
        write("stats", stats),
      ],
      body: bnStatsFinalizeBody(geo, momentum, eps),
      workgroups: grid1d(c),
    });
    partial.dispose();
  } else {
    runKernel({
      name: `${op}.evalStats`,
      bindings: [
        read("gamma", gamma),
        read("beta", beta),
        read("runningMean", runningMean),
        read("runningVar", runningVar),
        write("stats", stats),
      ],
      body: bnEvalStatsBody(c, eps),
      workgroups: grid1d(c),
    });
  }
  runKernel({
    name: op,
    bindings: [read("x", x), read("stats", stats), write("out", out)],
    body: bnNormalizeBody(geo, relu),
    workgroups: grid1d(bnRunInvocations(geo)),
  });
  const recorded = record(op, [x, gamma, beta], out, (dy) => {
    const partial = empty([2, c, geo.chunks]);
    runKernel({
      name: `${op}.backward.partial`,
      bindings: [read("x", x), read("dy", dy), read("stats", stats), write("partial", partial)],
      body: bnBackwardPartialBody(geo, relu),
      workgroups: grid1d(c * geo.chunks),
    });
    // The finalize kernel writes every element of both, so they may be the parameters' optimiser slots.
    const dgamma = gamma.requiresGrad ? gradTarget(gamma) : empty(gamma.shape);
    const dbeta = beta.requiresGrad ? gradTarget(beta) : empty(beta.shape);
    const coef = empty([3, c]);
    runKernel({
      name: `${op}.backward.finalize`,
      bindings: [
        read("partial", partial),
        read("stats", stats),
        write("dgamma", dgamma),
        write("dbeta", dbeta),
        write("coef", coef),
      ],
      body: bnBackwardFinalizeBody(geo, training),
      workgroups: grid1d(c),
    });
    const dx = empty(x.shape);
    runKernel({
      name: `${op}.backward`,
      bindings: [read("x", x), read("dy", dy), read("stats", stats), read("coef", coef), write("dx", dx)],
      body: bnBackwardApplyBody(geo, relu),
      workgroups: grid1d(bnRunInvocations(geo)),
    });
    partial.dispose();
    coef.dispose();
    stats.dispose();
    return [dx, dgamma, dbeta];
  });
  if (!recorded.node) stats.dispose();
  return recorded;
}

/**
 * Batch normalisation of an NCHW tensor per channel: `y = γ·(x − μ)/√(σ² + ε) + β`.
 *
 * - `training: true`: μ, σ² are the batch mean and biased variance over (N, H, W); `runningMean` and
 *   `runningVar` are updated IN PLACE (recorded with the forward) as PyTorch does:
 *   `runningMean ← (1−m)·runningMean + m·μ`, `runningVar ← (1−m)·runningVar + m·σ²·n/(n−1)`,
 *   n = N·H·W. Backward differentiates through the batch statistics:
 *   dx = (γ/σ)·(dy − mean(dy) − x̂·mean(dy·x̂)), dγ = Σ dy·x̂, dβ = Σ dy.
 * - `training: false`: the running statistics (constants); dx = (γ/σ)·dy.
 *
 * `params`: `gamma`, `beta`, `runningMean`, `runningVar`, C elements each. The statistics the backward needs
 * are a [4, C] tensor created here and freed by the backward (or by the enclosing scope).
 */
export function batchNorm2d(x: Tensor, params: BatchNormParams, options: BatchNormOptions): Tensor {
  return batchNormImpl("batchNorm2d", false, x, params, options);
}

/**
 * `relu(batchNorm2d(...))` in the same number of passes as `batchNorm2d` (the ReLU is applied by the
 * normalise kernel; its mask is recomputed from x in the backward, so nothing extra is stored).
 */
export function batchNormRelu2d(x: Tensor, params: BatchNormParams, options: BatchNormOptions): Tensor {
  return batchNormImpl("batchNormRelu2d", true, x, params, options);
}
