/**
 * PyTorch's default initialisations, deterministic given a seed.
 *
 * `nn.Conv2d` and `nn.Linear` initialise their weights with `kaiming_uniform_(a=√5)`: gain
 * √(2/(1+a²)) = √(1/3) and bound gain·√(3/fan_in) = 1/√fan_in, i.e. U(−1/√fan_in, 1/√fan_in), with
 * fan_in = in_channels·kh·kw (conv) or in_features (linear). A linear bias is U(−1/√fan_in, 1/√fan_in).
 * `nn.BatchNorm2d`: γ = 1, β = 0, running mean 0, running variance 1.
 *
 * Random numbers come from the project's seeded xoshiro128** generator (`engine/rng.ts`).
 *
 * @module
 */
import { Rng } from "../engine/rng.ts";
import { shapeSize, type Tensor, tensor } from "../engine/tensor.ts";

/** A generator from a seed, or the generator itself when one is given (shared and advanced). */
export function toRng(seed: number | Rng = 0): Rng {
  return seed instanceof Rng ? seed : new Rng(seed);
}

/** fan_in of a weight of `shape` (PyTorch: shape[1]·Π shape[2..]); 1-D shapes use their length. */
export function fanIn(shape: readonly number[]): number {
  if (shape.length < 2) return shape[0] ?? 1;
  return shapeSize(shape.slice(1));
}

/** `n` float32 values uniform in [−bound, bound). */
export function uniformValues(n: number, bound: number, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.uniform(-bound, bound);
  return out;
}

/** Host values of PyTorch's default `kaiming_uniform_(a=√5)`: U(−1/√fan_in, 1/√fan_in). */
export function kaimingUniformDefault(shape: readonly number[], rng: Rng): Float32Array {
  return uniformValues(shapeSize(shape), 1 / Math.sqrt(fanIn(shape)), rng);
}

/** A conv weight [out, in, k, k] with PyTorch's default init (a new tensor, not yet a parameter). */
export function convWeight(outChannels: number, inChannels: number, kernel: number, rng: Rng): Tensor {
  const shape = [outChannels, inChannels, kernel, kernel];
  return tensor(kaimingUniformDefault(shape, rng), shape);
}

/** A linear weight [out, in] with PyTorch's default init. */
export function linearWeight(outFeatures: number, inFeatures: number, rng: Rng): Tensor {
  const shape = [outFeatures, inFeatures];
  return tensor(kaimingUniformDefault(shape, rng), shape);
}

/** A linear bias [out] with PyTorch's default init U(−1/√in, 1/√in). */
export function linearBias(outFeatures: number, inFeatures: number, rng: Rng): Tensor {
  return tensor(uniformValues(outFeatures, 1 / Math.sqrt(inFeatures), rng), [outFeatures]);
}

/** A tensor of `shape` filled with `value` (BatchNorm γ = 1, β = 0, running statistics). */
export function constant(shape: readonly number[], value: number): Tensor {
  return tensor(new Float32Array(shapeSize(shape)).fill(value), shape);
}
