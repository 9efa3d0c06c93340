/**
 * ResNet-18 for 32×32 inputs (CIFAR), the encoder of the paper's experiments, plus the layer
 * modules it is built from (`Conv2d`, `BatchNorm2d`).
 *
 * Parameter names follow the CIFAR ResNet of kuangliu/pytorch-cifar that the authors' code
 * (plus-rkwitt/py_supcon_vs_ce) adapts: `conv1.weight`, `bn1.weight`, `bn1.running_mean`,
 * `layer1.0.conv1.weight`, …, `layer2.0.shortcut.0.weight` (1×1 conv), `layer2.0.shortcut.1.weight`
 * (its BN). The classifier is a separate module (`classifier.ts`); `forward` returns features.
 *
 * Forwards never dispose their intermediates: the autograd closures of the ops hold them until
 * `backward()`. Run a training or evaluation step inside `tidy` to free them.
 *
 * @module
 */
import type { Tensor } from "../engine/tensor.ts";
import { ShapeError } from "../engine/tensor.ts";
import { conv2d } from "../engine/ops/conv.ts";
import { batchNorm2d, batchNormRelu2d } from "../engine/ops/batchnorm.ts";
import { add, addRelu } from "../engine/ops/elementwise.ts";
import { globalAvgPool } from "../engine/ops/pool.ts";
import { Module } from "./module.ts";
import type { Rng } from "../engine/rng.ts";
import { constant, convWeight, toRng } from "./init.ts";

/** Options of {@link Conv2d}. */
export interface Conv2dLayerOptions {
  /** Stride (default 1). */
  stride?: number;
  /** Zero padding on each side (default 0). */
  padding?: number;
  /** Seed or shared generator for the weight init (default seed 0). */
  rng?: Rng | number;
}

/** A bias-free 2-D convolution (NCHW input, OIHW weight `weight`), PyTorch default init. */
export class Conv2d extends Module {
  /** Weight [out, in, k, k]. */
  readonly weight: Tensor;
  /** Stride. */
  readonly stride: number;
  /** Padding. */
  readonly padding: number;

  /** A `kernel`×`kernel` convolution from `inChannels` to `outChannels`. */
  constructor(inChannels: number, outChannels: number, kernel: number, options: Conv2dLayerOptions = {}) {
    super();
    this.stride = options.stride ?? 1;
    this.padding = options.padding ?? 0;
    this.weight = this.registerParameter(
      "weight",
      convWeight(outChannels, inChannels, kernel, toRng(options.rng)),
    );
  }

  /** `conv2d(x, weight)` with this layer's stride and padding. */
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, { stride: this.stride, padding: this.padding });
  }
}

/** Options of {@link BatchNorm2d}. */
export interface BatchNorm2dOptions {
  /** Running-statistics momentum (PyTorch convention, default 0.1). */
  momentum?: number;
  /** Variance epsilon (default 1e-5). */
  eps?: number;
}

/**
 * Batch normalisation over (N, H, W) per channel: parameters `weight` (γ = 1) and `bias` (β = 0),
 * buffers `running_mean` (0) and `running_var` (1). In training mode it normalises with batch
 * statistics and updates the running statistics in place; in eval mode it uses the running ones.
 */
export class BatchNorm2d extends Module {
  /** γ [C]. */
  readonly weight: Tensor;
  /** β [C]. */
  readonly bias: Tensor;
  /** Running mean [C] (buffer). */
  readonly runningMean: Tensor;
  /** Running variance [C] (buffer). */
  readonly runningVar: Tensor;
  /** Momentum of the running statistics. */
  readonly momentum: number;
  /** Variance epsilon. */
  readonly eps: number;

  /** BatchNorm over `channels` channels (γ = 1, β = 0, running mean 0, running variance 1). */
  constructor(channels: number, options: BatchNorm2dOptions = {}) {
    super();
    this.momentum = options.momentum ?? 0.1;
    this.eps = options.eps ?? 1e-5;
    this.weight = this.registerParameter("weight", constant([channels], 1));
    this.bias = this.registerParameter("bias", constant([channels], 0));
    this.runningMean = this.registerBuffer("running_mean", constant([channels], 0));
    this.runningVar = this.registerBuffer("running_var", constant([channels], 1));
  }

  /** BN of `x` [N, C, H, W]; followed by ReLU when `withRelu` (fused kernel). */
  forward(x: Tensor, withRelu = false): Tensor {
    const options = { training: this.training, momentum: this.momentum, eps: this.eps };
    const params = {
      gamma: this.weight,
      beta: this.bias,
      runningMean: this.runningMean,
      runningVar: this.runningVar,
    };
    return withRelu ? batchNormRelu2d(x, params, options) : batchNorm2d(x, params, options);
  }
}

/** The projection shortcut of a block: `0` = 1×1 stride-s conv, `1` = its BN (post-activation only). */
class Shortcut extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d | null;

  constructor(inPlanes: number, planes: number, stride: number, withBn: boolean, rng: Rng) {
    super();
    this.conv = this.registerModule("0", new Conv2d(inPlanes, planes, 1, { stride, rng }));
    this.bn = withBn ? this.registerModule("1", new BatchNorm2d(planes)) : null;
  }

  forward(x: Tensor): Tensor {
    const c = this.conv.forward(x);
    return this.bn ? this.bn.forward(c) : c;
  }
}

/** A residual block taking [N, in, H, W] to [N, planes, H/s, W/s]. */
interface Block extends Module {
  forward(x: Tensor): Tensor;
}

/**
 * Post-activation BasicBlock (He et al. 2016a):
 * out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), shortcut = identity or 1×1 conv + BN.
 */
class BasicBlock extends Module implements Block {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly shortcut: Shortcut | null;

  constructor(inPlanes: number, planes: number, stride: number, rng: Rng) {
    super();
    this.conv1 = this.registerModule("conv1", new Conv2d(inPlanes, planes, 3, { stride, padding: 1, rng }));
    this.bn1 = this.registerModule("bn1", new BatchNorm2d(planes));
    this.conv2 = this.registerModule("conv2", new Conv2d(planes, planes, 3, { stride: 1, padding: 1, rng }));
    this.bn2 = this.registerModule("bn2", new BatchNorm2d(planes));
    this.shortcut = stride !== 1 || inPlanes !== planes
      ? this.registerModule("shortcut", new Shortcut(inPlanes, planes, stride, true, rng))
      : null;
  }

  forward(x: Tensor): Tensor {
    const h = this.bn1.forward(this.conv1.forward(x), true);
    const b2 = this.bn2.forward(this.conv2.forward(h));
    const s = this.shortcut ? this.shortcut.forward(x) : x;
    const out = addRelu(b2, s); // fused: the pre-ReLU sum is never stored
    // No backward reads these BN outputs (addRelu's reads `out`, batch norm's reads its input):
    // free their memory now, keeping their autograd nodes.
    b2.releaseData();
    if (s !== x) s.releaseData();
    return out;
  }
}

/**
 * Pre-activation block (He et al. 2016b, as in kuangliu's preact_resnet.py):
 * a = relu(bn1(x)); out = conv2(relu(bn2(conv1(a)))) + shortcut, where the shortcut is the 1×1 conv
 * applied to the pre-activated `a` when the shape changes, else the identity on `x`.
 */
class PreActBlock extends Module implements Block {
  readonly bn1: BatchNorm2d;
  readonly conv1: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly shortcut: Shortcut | null;

  constructor(inPlanes: number, planes: number, stride: number, rng: Rng) {
    super();
    this.bn1 = this.registerModule("bn1", new BatchNorm2d(inPlanes));
    this.conv1 = this.registerModule("conv1", new Conv2d(inPlanes, planes, 3, { stride, padding: 1, rng }));
    this.bn2 = this.registerModule("bn2", new BatchNorm2d(planes));
    this.conv2 = this.registerModule("conv2", new Conv2d(planes, planes, 3, { stride: 1, padding: 1, rng }));
    this.shortcut = stride !== 1 || inPlanes !== planes
      ? this.registerModule("shortcut", new Shortcut(inPlanes, planes, stride, false, rng))
      : null;
  }

  forward(x: Tensor): Tensor {
    const a = this.bn1.forward(x, true);
    const s = this.shortcut ? this.shortcut.forward(a) : x;
    const h = this.bn2.forward(this.conv1.forward(a), true);
    return add(this.conv2.forward(h), s);
  }
}

/** A stage of blocks named `0`, `1`, … (PyTorch `nn.Sequential`). */
class Stage extends Module {
  readonly blocks: Block[] = [];

  constructor(blocks: Block[]) {
    super();
    blocks.forEach((b, i) => this.blocks.push(this.registerModule(String(i), b)));
  }

  forward(x: Tensor): Tensor {
    let h = x;
    for (const b of this.blocks) h = b.forward(h);
    return h;
  }
}

/** ResNet variants: post-activation (the paper's encoder) or pre-activation. */
export type ResNetVariant = "standard" | "preact";

/** Options of {@link ResNet18}. */
export interface ResNetOptions {
  /** `standard` (post-activation, default) or `preact`. */
  variant?: ResNetVariant;
  /** Multiplier on the stage widths [64, 128, 256, 512] (default 1; channels round to integers ≥ 1). */
  width?: number;
  /** Input channels (default 3). */
  inChannels?: number;
  /** Seed of the weight initialisation (default 0). */
  seed?: number;
}

/** Stage widths of ResNet-18 at a width multiplier: round(w·[64, 128, 256, 512]), at least 1. */
export function resnetWidths(width = 1): number[] {
  if (!(width > 0) || !Number.isFinite(width)) {
    throw new RangeError(`ResNet18: width must be > 0, got ${width}`);
  }
  return [64, 128, 256, 512].map((c) => Math.max(1, Math.round(c * width)));
}

/**
 * ResNet-18 encoder for 32×32 inputs as in the paper (Section 5, FORMULAS.md "Protocol facts"):
 * 3×3 stride-1 stem conv, no max-pool, BasicBlocks [2, 2, 2, 2] with strides [1, 2, 2, 2], 1×1
 * stride-s conv shortcuts where the shape changes, global average pooling → [N, 512·width].
 *
 * - `standard` (post-activation, He et al. 2016a): stem conv1 → bn1 → ReLU; each block ends with a
 *   ReLU after the residual sum, so the features are ≥ 0 (the constraint the paper points out in
 *   Section 5.2). Width 1 has 11,168,832 parameters, as the paper states.
 * - `preact` (He et al. 2016b, as kuangliu's `preact_resnet.py` for CIFAR): stem conv1 only;
 *   pre-activation blocks; the last block's residual sum goes straight to the average pool, with no
 *   BN and no ReLU after it, so the features are signed and class means may form a regular simplex
 *   (inner products −ρ²/(K−1) < 0), which the paper conjectures post-activation nets cannot.
 *   (A final BatchNorm would let training collapse every output onto its bias β by shrinking γ, the
 *   trivial plateau log(b − 1) of the SC loss; we saw exactly that in an early version.)
 */
export class ResNet18 extends Module {
  /** Variant. */
  readonly variant: ResNetVariant;
  /** Width multiplier. */
  readonly width: number;
  /** Input channels. */
  readonly inChannels: number;
  /** Stage widths. */
  readonly widths: number[];
  /** Feature dimension (the last stage width, 512 at width 1). */
  readonly featureDim: number;
  /** Stem convolution. */
  readonly conv1: Conv2d;
  /** Stem BN `bn1` (standard variant; the preact variant has none). */
  readonly bn: BatchNorm2d | null;
  /** The four stages `layer1` … `layer4`. */
  readonly layers: ReadonlyArray<Module & { forward(x: Tensor): Tensor }>;

  /** Builds the network and initialises it with PyTorch's defaults from `options.seed`. */
  constructor(options: ResNetOptions = {}) {
    super();
    this.variant = options.variant ?? "standard";
    if (this.variant !== "standard" && this.variant !== "preact") {
      throw new RangeError(`ResNet18: unknown variant "${this.variant}"`);
    }
    this.width = options.width ?? 1;
    this.inChannels = options.inChannels ?? 3;
    this.widths = resnetWidths(this.width);
    this.featureDim = this.widths[3];
    const rng = toRng(options.seed ?? 0);
    const preact = this.variant === "preact";

    this.conv1 = this.registerModule(
      "conv1",
      new Conv2d(this.inChannels, this.widths[0], 3, { padding: 1, rng }),
    );
    this.bn = preact ? null : this.registerModule("bn1", new BatchNorm2d(this.widths[0]));
    const layers: Stage[] = [];
    let inPlanes = this.widths[0];
    const strides = [1, 2, 2, 2];
    for (let s = 0; s < 4; s++) {
      const planes = this.widths[s];
      const blocks: Block[] = [];
      for (const stride of [strides[s], 1]) {
        blocks.push(
          preact
            ? new PreActBlock(inPlanes, planes, stride, rng)
            : new BasicBlock(inPlanes, planes, stride, rng),
        );
        inPlanes = planes;
      }
      layers.push(this.registerModule(`layer${s + 1}`, new Stage(blocks)));
    }
    this.layers = layers;
  }

  /** Features [N, featureDim] of images x [N, inChannels, H, W] (H, W divisible by 8; 32 in the paper). */
  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.inChannels) {
      throw new ShapeError(
        "ResNet18.forward",
        `expected input [N, ${this.inChannels}, H, W], got [${x.shape.join(", ")}]`,
      );
    }
    const stem = this.conv1.forward(x);
    let h = this.bn ? this.bn.forward(stem, true) : stem;
    for (const layer of this.layers) h = layer.forward(h);
    return globalAvgPool(h); // preact: the signed residual sum (no BN, no ReLU after the last block)
  }
}
