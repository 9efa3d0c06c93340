/**
 * The training room: a loop, a state checkpointed whole, checkpoints, a GPU-resident dataset,
 * evaluation, stop signals and CSV metrics, for any model and loss built on the engine (`mod.ts`). It
 * knows nothing about the paper; experiments/section5 composes it for ResNet-18, and
 * examples/fashion_sc.ts trains a small conv net with it. Deno only (files, signals), outside `mod.ts`.
 * @module
 */
export * from "./loop.ts";
export * from "./state.ts";
export * from "./checkpoint.ts";
export * from "./data_gpu.ts";
export * from "./evaluate.ts";
export * from "./signals.ts";
export * from "./csv.ts";
export * from "./atomic.ts";
export * from "./lock.ts";
export {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  MAX_HEADER_BYTES,
  type SafetensorsDtype,
  SafetensorsError,
  type SafetensorsFile,
  saveSafetensors,
  type Tensor as SafetensorsTensor,
  type TensorData as SafetensorsData,
} from "./safetensors.ts";
