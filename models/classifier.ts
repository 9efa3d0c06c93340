/**
 * Linear classifiers on top of an encoder: a trainable one (CE, and the SC linear probe) and one
 * fixed at a regular simplex (CE-fix).
 *
 * @module
 */
import { fmtShape, ShapeError, type Tensor, tensor } from "../engine/tensor.ts";
import { linear } from "../engine/ops/matmul.ts";
import { regularSimplex } from "../theory/simplex.ts";
import { Module } from "./module.ts";
import { linearBias, linearWeight, toRng } from "./init.ts";

function checkFeatures(op: string, x: Tensor, inFeatures: number): void {
  if (x.rank !== 2 || x.shape[1] !== inFeatures) {
    throw new ShapeError(op, `expected features [N, ${inFeatures}], got ${fmtShape(x.shape)}`);
  }
}

/** Options of {@link LinearClassifier}. */
export interface LinearClassifierOptions {
  /** Add a bias (default false: the paper's classifier is bias-free). */
  bias?: boolean;
  /** Seed of the PyTorch-default init (default 0). */
  seed?: number;
}

/**
 * logits = x·Wᵀ (+ b), W [numClasses, inFeatures] as `weight` (optional `bias` [numClasses]), both
 * with PyTorch's `nn.Linear` init U(−1/√in, 1/√in). Bias-free by default, as in the paper.
 */
export class LinearClassifier extends Module {
  /** Weight [numClasses, inFeatures]. */
  readonly weight: Tensor;
  /** Bias [numClasses], or null. */
  readonly bias: Tensor | null;
  /** Input dimension. */
  readonly inFeatures: number;
  /** Number of classes. */
  readonly numClasses: number;

  /** A classifier from `inFeatures` to `numClasses` logits, initialised from `options.seed`. */
  constructor(inFeatures: number, numClasses: number, options: LinearClassifierOptions = {}) {
    super();
    this.inFeatures = inFeatures;
    this.numClasses = numClasses;
    const rng = toRng(options.seed ?? 0);
    this.weight = this.registerParameter("weight", linearWeight(numClasses, inFeatures, rng));
    this.bias = options.bias ? this.registerParameter("bias", linearBias(numClasses, inFeatures, rng)) : null;
  }

  /** Logits [N, numClasses] of features [N, inFeatures]. */
  forward(features: Tensor): Tensor {
    checkFeatures("LinearClassifier.forward", features, this.inFeatures);
    return this.bias ? linear(features, this.weight, this.bias) : linear(features, this.weight);
  }
}

/**
 * A regular simplex of K vertices with norm `radius` in R^h whose vertices are all orthogonal to the
 * all-ones vector (when h ≥ K): ζ_i = radius·(e_i − 1/K)/‖e_i − 1/K‖ in the first K coordinates.
 *
 * Any orientation of the simplex is an equally valid classifier in theory, but not for a network whose
 * features are non-negative (post-activation ResNets): features share a large common component c·1,
 * and with weights not orthogonal to 1 that component adds c·⟨w_k, 1⟩ to the logits, which differs per
 * class and makes one class win for every input early in training. For h = K − 1 (no room) this falls
 * back to `regularSimplex`.
 */
export function simplexOrthogonalToOnes(K: number, h: number, radius = 1): number[][] {
  if (h < K) return regularSimplex(K, h, radius);
  const scale = radius / Math.sqrt((K - 1) / K); // ‖e_i − 1/K‖ = √((K−1)/K)
  return Array.from({ length: K }, (_, i) => {
    const row = new Array<number>(h).fill(0);
    for (let j = 0; j < K; j++) row[j] = scale * ((i === j ? 1 : 0) - 1 / K);
    return row;
  });
}

/**
 * A classifier whose weights are fixed (`requiresGrad` false, a buffer named `weight`, so it is saved
 * in state dicts but never handed to an optimiser) at the exact regular simplex with `numClasses`
 * vertices of norm `radius` (default 1) in R^inFeatures (needs numClasses ≤ inFeatures + 1): rows
 * satisfy Σ w_y = 0, ‖w_y‖ = radius, ⟨w_y, w_y'⟩ = −radius²/(K−1). The paper's CE-fix model.
 * The vertices are orthogonal to the all-ones vector ({@link simplexOrthogonalToOnes}).
 */
export class SimplexClassifier extends Module {
  /** Weight [numClasses, inFeatures] (buffer, fixed). */
  readonly weight: Tensor;
  /** Input dimension. */
  readonly inFeatures: number;
  /** Number of classes. */
  readonly numClasses: number;

  /** Fixed simplex weights: `numClasses` vertices of norm `radius` in R^inFeatures; throws RangeError if K > h + 1. */
  constructor(inFeatures: number, numClasses: number, radius = 1) {
    super();
    if (numClasses > inFeatures + 1) {
      throw new RangeError(
        `SimplexClassifier: ${numClasses} classes need at least ${
          numClasses - 1
        } features, got ${inFeatures}`,
      );
    }
    this.inFeatures = inFeatures;
    this.numClasses = numClasses;
    this.weight = this.registerBuffer(
      "weight",
      tensor(simplexOrthogonalToOnes(numClasses, inFeatures, radius).flat(), [numClasses, inFeatures]),
    );
  }

  /** Logits [N, numClasses] = features·Wᵀ; gradients flow to the features only. */
  forward(features: Tensor): Tensor {
    checkFeatures("SimplexClassifier.forward", features, this.inFeatures);
    return linear(features, this.weight);
  }
}
