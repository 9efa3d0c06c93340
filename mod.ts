/**
 * A WebGPU compute engine in TypeScript with hand-written WGSL kernels, and the models, theory and
 * experiments of *Dissecting Supervised Contrastive Learning* (Graf, Hofer, Niethammer, Kwitt; ICML 2021).
 *
 * Every import below is relative, so this module also works when imported from a URL.
 *
 * @example
 * ```ts
 * import { crossEntropy, initDevice, linear, relu, SGD, tensor } from "./mod.ts";
 *
 * await initDevice();
 * const w = tensor([[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]], undefined, { requiresGrad: true });
 * const x = tensor([[1, 2], [3, 4]]);
 * const labels = tensor([0, 2], [2], { dtype: "i32" });
 * const opt = new SGD([w], { lr: 0.1, momentum: 0.9 });
 * const loss = crossEntropy(relu(linear(x, w)), labels);
 * loss.backward();
 * opt.step();
 * console.log(await loss.item());
 * ```
 *
 * @module
 */

// Device, tensors, autograd, ownership
export { type AdapterReport, type DeviceOptions, GpuError } from "./engine/device.ts";
export {
  type BufferRange,
  Gpu,
  gpu,
  type GpuCounters,
  hasDevice,
  initDevice,
  type KernelProfile,
  type ProfileReport,
} from "./engine/gpu.ts";
export {
  KERNELS_ENV,
  type KernelStrategy,
  type KernelStrategyOption,
  resolveKernelStrategy,
} from "./engine/strategy.ts";
export type { GpuDeviceHandle } from "./engine/device.ts";
// Autotuning: measured kernel choices per adapter, cached
export { type SiteRunner, type TuneDecision, Tuner, type TuneSite } from "./engine/tune/tuner.ts";
export { resolveTuningMode, TUNING_CACHE_ENV, TUNING_ENV, type TuningMode } from "./engine/tune/mode.ts";
export { adapterKey, TUNING_FORMAT, TuningCache, type TuningEntry } from "./engine/tune/cache.ts";
export { defaultCachePath, defaultStore, memoryStore, type TuningStore } from "./engine/tune/store.ts";
export { type CandidateTime, timeCandidate, type TimingOptions } from "./engine/tune/timing.ts";
export { VERSION } from "./engine/version.ts";
export { BufferPool, type PoolStats, sizeClass } from "./engine/buffer_pool.ts";
export { type CompiledKernel, type KernelSpec, PipelineCache } from "./engine/kernel.ts";
export {
  type BackwardOptions,
  type DType,
  empty,
  fmtShape,
  type GradSink,
  ShapeError,
  Storage,
  Tensor,
  tensor,
  type TensorData,
  type TensorOptions,
  type TypedArrayFor,
  writeTensor,
} from "./engine/tensor.ts";
export { type GradNode, isGradEnabled, noGrad, record } from "./engine/autograd.ts";
export { keep, TensorScope, tidy } from "./engine/scope.ts";

// Ops
export { addInto, copyInto, fill } from "./engine/ops/core.ts";
export {
  add,
  addRelu,
  addScalar,
  clampMin,
  div,
  exp,
  log,
  mul,
  mulScalar,
  neg,
  powScalar,
  relu,
  sqrt,
  square,
  sub,
} from "./engine/ops/elementwise.ts";
export { max, mean, sum } from "./engine/ops/reduce.ts";
export { accuracy, argmax, concat, flatten, gatherRows, reshape, transpose2d } from "./engine/ops/shape.ts";
export { globalAvgPool } from "./engine/ops/pool.ts";
export {
  batchNorm2d,
  type BatchNormOptions,
  type BatchNormParams,
  batchNormRelu2d,
} from "./engine/ops/batchnorm.ts";
export {
  gemmFallbackReason,
  type GemmTiling,
  gemmTiling,
  linear,
  matmul,
  type MatmulOptions,
} from "./engine/ops/matmul.ts";
export { conv2d, type Conv2dOptions } from "./engine/ops/conv.ts";
export {
  crossEntropy,
  type CrossEntropyOptions,
  normalizeToSphere,
  supConAnchorLosses,
  supConLoss,
} from "./engine/ops/loss.ts";
export {
  MultisetTable,
  scLossAllMultisets,
  type ScLossAllMultisetsResult,
  scMultisetBatchLosses,
  ScMultisetTrainer,
  type ScMultisetTrainerOptions,
  scSphereDescent,
  type ScSphereDescentOptions,
  type ScSphereDescentResult,
} from "./engine/ops/sc_multiset.ts";
export type { CountsLayout } from "./shaders/sc_multiset.ts";
export { augmentBatch, type AugmentOptions, augmentParams, uploadImages } from "./engine/ops/augment.ts";

// Optimisers
export { type ProjectionSpec, SGD, type SGDOptions, type SGDState } from "./engine/optim/sgd.ts";
export {
  constantLr,
  constantSchedule,
  exponentialLr,
  exponentialSchedule,
  polynomialLr,
  polynomialSchedule,
  type Schedule,
} from "./engine/optim/schedule.ts";
export { type ProjectionKind, projectToBall, projectToSphere } from "./engine/optim/projection.ts";

// Models, theory, data
export * from "./models/mod.ts";
export * from "./theory/mod.ts";
export * from "./data/mod.ts";
