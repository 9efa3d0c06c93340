/**
 * The TensorFlow.js WebGPU peer: the benchmark cases written with tfjs-core ops on the
 * `webgpu` backend, in the same Deno process and on the same adapter as our engine (each has its
 * own GPUDevice). Bench-only dependency: npm:@tensorflow/tfjs-core and tfjs-backend-webgpu 4.22.0.
 *
 * TF.js runs in its native layout, NHWC (filters [kh, kw, cin, cout]). Each case syncs by reading
 * back one scalar of its last output (`await t.data()`).
 */
// deno-lint-ignore no-import-prefix -- bench-only peer, pinned here (not in deno.json)
import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
// tfjs-core's npm entry (a CommonJS bundle) registers no gradients, and its ESM
// `dist/register_all_gradients.js` uses extension-less imports that Deno cannot resolve. The union
// package's CommonJS bundle registers every gradient into the same tfjs-core instance.
// deno-lint-ignore no-import-prefix -- bench-only peer, pinned here (not in deno.json)
import "npm:@tensorflow/tfjs@4.22.0";
// deno-lint-ignore no-import-prefix -- bench-only peer, pinned here (not in deno.json)
import "npm:@tensorflow/tfjs-backend-webgpu@4.22.0";
import { type BenchCase, convOut, type ConvShape, resnet18Convs } from "../harness.ts";

/** What `initTfjs` found. */
export interface TfjsInfo {
  /** tfjs-core version. */
  version: string;
  /** Active backend name (`webgpu`). */
  backend: string;
  /** The adapter TF.js's backend reports. */
  adapter: string;
}

let info: TfjsInfo | null = null;

/**
 * Selects and initialises TF.js's WebGPU backend (once). Throws when it is not available, rather
 * than silently falling back to the CPU backend.
 */
export async function initTfjs(): Promise<TfjsInfo> {
  if (info) return info;
  const ok = await tf.setBackend("webgpu");
  await tf.ready();
  if (!ok || tf.getBackend() !== "webgpu") {
    throw new Error(`tfjs: the webgpu backend did not initialise (active backend: ${tf.getBackend()})`);
  }
  const backend = tf.backend() as unknown as {
    adapterInfo?: { vendor?: string; architecture?: string };
    device?: GPUDevice;
  };
  const a = backend.adapterInfo ?? {};
  info = {
    version: tf.version_core,
    backend: tf.getBackend(),
    adapter: [a.vendor, a.architecture].filter((s) => s).join(", ") || "unknown",
  };
  return info;
}

/** Reads back one element of `t` (a 1-element slice for larger tensors): waits for all prior work. */
async function readScalar(t: tf.Tensor | null): Promise<void> {
  if (!t) return;
  if (t.size === 1) {
    await t.data();
    return;
  }
  const one = tf.tidy(() => tf.slice(tf.reshape(t, [-1]), [0], [1]));
  await one.data();
  one.dispose();
}

/** A case whose step produces one tensor; the previous one is disposed at the next step. */
function outputCase(inputs: tf.Tensor[], produce: () => tf.Tensor): BenchCase {
  let out: tf.Tensor | null = null;
  return {
    step: () => {
      out?.dispose();
      out = produce();
    },
    sync: () => readScalar(out),
    dispose: () => {
      out?.dispose();
      out = null;
      for (const t of inputs) t.dispose();
    },
  };
}

/** Seeded normal(0, std) tensor. */
function normal(shape: number[], seed: number, std = 1): tf.Tensor {
  return tf.randomNormal(shape, 0, std, "float32", seed);
}

/** `a·b` (or `a·bᵀ` with `transB`) for a [m, k] (b [k, n], or [n, k] with `transB`). */
export function tfMatmul(m: number, k: number, n: number, { transB = false } = {}): BenchCase {
  const a = normal([m, k], 1);
  const b = normal(transB ? [n, k] : [k, n], 2);
  return outputCase([a, b], () => tf.matMul(a, b, false, transB));
}

/** Which pass of a convolution to time. */
export type ConvPass = "forward" | "grad-input" | "grad-weight";

/**
 * One convolution pass in NHWC: the forward `tf.conv2d`, or the backward kernels that `tf.grads`
 * of `tf.conv2d` dispatches (Conv2DBackpropInput and Conv2DBackpropFilter), called directly so that
 * the forward is not timed with them.
 */
export function tfConv(c: ConvShape, pass: ConvPass): BenchCase {
  const { ho, wo } = convOut(c);
  const strides: [number, number] = [c.stride, c.stride];
  const x = normal([c.n, c.h, c.w, c.cin], 3);
  const w = normal([c.k, c.k, c.cin, c.cout], 4, Math.sqrt(2 / (c.cin * c.k * c.k)));
  const dy = normal([c.n, ho, wo, c.cout], 5);
  const common = { strides, pad: c.pad, dataFormat: "NHWC", dimRoundingMode: undefined };
  const engine = tf.engine();
  if (pass === "forward") {
    return outputCase([x, w, dy], () => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, strides, c.pad));
  }
  if (pass === "grad-input") {
    return outputCase([x, w, dy], () =>
      engine.runKernel("Conv2DBackpropInput", { dy, filter: w }, {
        ...common,
        inputShape: [c.n, c.h, c.w, c.cin],
      } as unknown as tf.NamedAttrMap) as tf.Tensor);
  }
  return outputCase([x, w, dy], () =>
    engine.runKernel("Conv2DBackpropFilter", { x, dy }, {
      ...common,
      filterShape: [c.k, c.k, c.cin, c.cout],
    } as unknown as tf.NamedAttrMap) as tf.Tensor);
}

/** Options of the TF.js ResNet-18 training step. */
export interface TfResNetOptions {
  /** Base width (64 in the paper). */
  width?: number;
  /** Classes of the linear classifier on the 8·width-d features. */
  classes?: number;
  /** SGD learning rate. */
  lr?: number;
  /** SGD momentum. */
  momentum?: number;
  /** Weight decay added to every gradient before momentum (PyTorch order). */
  weightDecay?: number;
  /** Seed of the inputs and the initialisation. */
  seed?: number;
}

/**
 * One training step of ResNet-18 for 32×32 inputs (the paper's encoder: 3×3 stem, no max-pool,
 * BasicBlocks [2, 2, 2, 2], post-activation, 1×1 projection shortcuts, global average pool) with a
 * bias-free linear classifier and cross-entropy, written with tfjs-core ops in NHWC. Batch norm in
 * training mode from `tf.moments` (biased batch variance, eps 1e-5, running statistics updated with
 * momentum 0.1). Gradients via `tf.variableGrads`, then weight decay and `tf.train.momentum`.
 */
export function tfResNetStep(batch: number, options: TfResNetOptions = {}): BenchCase {
  const { width = 64, classes = 10, lr = 0.01, momentum = 0.9, weightDecay = 1e-4, seed = 7 } = options;
  let seedCounter = seed * 1000;
  const vars: tf.Variable[] = [];
  const running: { mean: tf.Variable; variance: tf.Variable }[] = [];
  const convW = (cin: number, cout: number, k: number) => {
    const v = tf.variable(normal([k, k, cin, cout], seedCounter++, Math.sqrt(2 / (cin * k * k))), true);
    vars.push(v);
    return v;
  };
  const bnParams = (c: number) => {
    const gamma = tf.variable(tf.ones([c]), true);
    const beta = tf.variable(tf.zeros([c]), true);
    vars.push(gamma, beta);
    const r = { mean: tf.variable(tf.zeros([c]), false), variance: tf.variable(tf.ones([c]), false) };
    running.push(r);
    return { gamma, beta, running: r };
  };
  type Bn = ReturnType<typeof bnParams>;
  type Conv = { w: tf.Variable; stride: number; pad: number; bn: Bn };
  const makeConv = (cin: number, cout: number, k: number, stride: number): Conv => ({
    w: convW(cin, cout, k),
    stride,
    pad: k === 3 ? 1 : 0,
    bn: bnParams(cout),
  });

  // Build the network with the same shapes as resnet18Convs (checked below).
  const stem = makeConv(3, width, 3, 1);
  const blocks: { c1: Conv; c2: Conv; shortcut: Conv | null }[] = [];
  let cin = width;
  [width, 2 * width, 4 * width, 8 * width].forEach((cout, stage) => {
    for (let b = 0; b < 2; b++) {
      const stride = stage > 0 && b === 0 ? 2 : 1;
      blocks.push({
        c1: makeConv(cin, cout, 3, stride),
        c2: makeConv(cout, cout, 3, 1),
        shortcut: stride !== 1 || cin !== cout ? makeConv(cin, cout, 1, stride) : null,
      });
      cin = cout;
    }
  });
  const convCount = 1 + blocks.reduce((s, b) => s + 2 + (b.shortcut ? 1 : 0), 0);
  const expected = resnet18Convs(batch, width).reduce((s, c) => s + c.count, 0);
  if (convCount !== expected) {
    throw new Error(`tfResNetStep: ${convCount} convolutions, expected ${expected}`);
  }
  const fc = tf.variable(normal([8 * width, classes], seedCounter++, Math.sqrt(1 / (8 * width))), true);
  vars.push(fc);

  const x = tf.randomUniform([batch, 32, 32, 3], -1, 1, "float32", seed + 1);
  const labels = tf.tidy(() =>
    tf.oneHot(tf.cast(tf.floor(tf.randomUniform([batch], 0, classes, "float32", seed + 2)), "int32"), classes)
  );
  const optimizer = tf.train.momentum(lr, momentum);

  let pendingStats: { r: Bn["running"]; mean: tf.Tensor; variance: tf.Tensor; unbias: number }[] = [];
  const convBn = (input: tf.Tensor4D, c: Conv, relu: boolean): tf.Tensor4D => {
    const y = tf.conv2d(input, c.w as tf.Tensor4D, c.stride, c.pad);
    const { mean, variance } = tf.moments(y, [0, 1, 2]);
    const count = y.shape[0] * y.shape[1] * y.shape[2];
    // Kept past variableGrads' scope for the running-statistics update after the step.
    pendingStats.push({
      r: c.bn.running,
      mean: tf.keep(mean),
      variance: tf.keep(variance),
      unbias: count / Math.max(1, count - 1),
    });
    const normed = tf.add(
      tf.mul(tf.mul(tf.sub(y, mean), tf.rsqrt(tf.add(variance, 1e-5))), c.bn.gamma),
      c.bn.beta,
    );
    return (relu ? tf.relu(normed) : normed) as tf.Tensor4D;
  };
  const lossFn = (): tf.Scalar => {
    let h = convBn(x as tf.Tensor4D, stem, true);
    for (const b of blocks) {
      const out = convBn(convBn(h, b.c1, true), b.c2, false);
      const skip = b.shortcut ? convBn(h, b.shortcut, false) : h;
      h = tf.relu(tf.add(out, skip));
    }
    const features = tf.mean(h, [1, 2]) as tf.Tensor2D;
    const logits = tf.matMul(features, fc);
    return tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  };

  let loss: tf.Tensor | null = null;
  return {
    step: () => {
      loss?.dispose();
      loss = tf.tidy(() => {
        pendingStats = [];
        const { value, grads } = tf.variableGrads(lossFn, vars);
        const decayed: { [name: string]: tf.Tensor } = {};
        for (const v of vars) decayed[v.name] = tf.add(grads[v.name], tf.mul(v, weightDecay));
        optimizer.applyGradients(decayed as unknown as Parameters<typeof optimizer.applyGradients>[0]);
        for (const { r, mean, variance, unbias } of pendingStats) {
          r.mean.assign(tf.add(tf.mul(r.mean, 0.9), tf.mul(mean, 0.1)));
          r.variance.assign(tf.add(tf.mul(r.variance, 0.9), tf.mul(variance, 0.1 * unbias)));
          mean.dispose();
          variance.dispose();
        }
        return value;
      });
    },
    sync: () => readScalar(loss),
    dispose: () => {
      (loss as tf.Tensor | null)?.dispose();
      optimizer.dispose();
      for (const v of vars) v.dispose();
      for (const r of running) {
        r.mean.dispose();
        r.variance.dispose();
      }
      x.dispose();
      labels.dispose();
    },
  };
}

/**
 * The supervised contrastive loss (FORMULAS.md, Eq. 6: a sum over the b anchors; the denominator a
 * log-sum-exp over k ≠ i; anchors without positives contribute 0) of z [b, d] with integer labels,
 * written with tfjs ops, and its gradient with respect to z by `tf.valueAndGrad`.
 */
function tfSupConLoss(z: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const b = z.shape[0];
  const gram = tf.matMul(z, z, false, true);
  const diag = tf.cast(tf.eye(b), "bool");
  const masked = tf.where(diag, tf.fill([b, b], -Infinity), gram);
  const lse = tf.logSumExp(masked, 1);
  const same = tf.logicalAnd(
    tf.equal(tf.expandDims(labels, 1), tf.expandDims(labels, 0)),
    tf.logicalNot(diag),
  );
  const pos = tf.cast(same, "float32");
  const npos = tf.sum(pos, 1);
  const sumPos = tf.sum(tf.mul(pos, gram), 1);
  const perAnchor = tf.div(tf.sub(sumPos, tf.mul(npos, lse)), tf.maximum(npos, 1));
  return tf.neg(tf.sum(perAnchor)) as tf.Scalar;
}

/** Options of {@link tfSupCon}. */
export interface TfSupConOptions {
  /** Rows of z [b·d] (default: seeded random points on the sphere of radius √10). */
  data?: Float32Array;
  /** Integer labels [b] (default: seeded uniform over `classes`). */
  labels?: Int32Array;
  /** Classes of the default labels. */
  classes?: number;
  /** Seed of the default data. */
  seed?: number;
}

/**
 * SC loss forward + backward at batch b, dimension d (z on the sphere of radius √10, τ = 0.1):
 * `tf.valueAndGrad` of {@link tfSupConLoss} with respect to z. `loss()` reads the last value.
 */
export function tfSupCon(
  b: number,
  d: number,
  { data, labels: labelData, classes = 10, seed = 11 }: TfSupConOptions = {},
): BenchCase & { loss: () => Promise<number> } {
  const z = data ? tf.tensor2d(data, [b, d]) : tf.tidy(() => {
    const u = normal([b, d], seed);
    return tf.mul(tf.div(u, tf.norm(u, "euclidean", 1, true)), Math.sqrt(10)) as tf.Tensor2D;
  });
  const labels = labelData
    ? tf.tensor1d(labelData, "int32")
    : tf.tidy(() =>
      tf.cast(tf.floor(tf.randomUniform([b], 0, classes, "float32", seed + 1)), "int32") as tf.Tensor1D
    );
  const valueAndGrad = tf.valueAndGrad((zz: tf.Tensor) => tfSupConLoss(zz as tf.Tensor2D, labels));
  let value: tf.Tensor | null = null;
  let grad: tf.Tensor | null = null;
  return {
    step: () => {
      value?.dispose();
      grad?.dispose();
      const r = valueAndGrad(z);
      value = r.value;
      grad = r.grad;
    },
    sync: () => readScalar(value),
    loss: async () => value ? (await value.data())[0] as number : NaN,
    dispose: () => {
      (value as tf.Tensor | null)?.dispose();
      (grad as tf.Tensor | null)?.dispose();
      z.dispose();
      labels.dispose();
    },
  };
}
