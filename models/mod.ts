/**
 * Models: the `Module` base (named parameters, buffers, train/eval, state dicts), PyTorch-default
 * initialisation, the ResNet-18 encoder (post- and pre-activation) for 32×32 inputs, linear and
 * regular-simplex classifiers, and free point configurations for the toy problems.
 *
 * @module
 */
export {
  type LoadStateDictOptions,
  Module,
  type StateDict,
  StateDictError,
  type StateEntry,
} from "./module.ts";
export {
  constant,
  convWeight,
  fanIn,
  kaimingUniformDefault,
  linearBias,
  linearWeight,
  toRng,
  uniformValues,
} from "./init.ts";
export {
  BatchNorm2d,
  type BatchNorm2dOptions,
  Conv2d,
  type Conv2dLayerOptions,
  ResNet18,
  type ResNetOptions,
  type ResNetVariant,
  resnetWidths,
} from "./resnet.ts";
export {
  LinearClassifier,
  type LinearClassifierOptions,
  SimplexClassifier,
  simplexOrthogonalToOnes,
} from "./classifier.ts";
export {
  initialPoints,
  PointConfiguration,
  type PointConfigurationOptions,
  type PointInit,
} from "./points.ts";
