/**
 * Does a Section 5 run fit the device? Checked before the first step (before the data are read), from
 * the configuration alone, against the adapter's limits: the SGD parameter arena (every parameter in
 * one storage buffer), the largest activation of a training batch (the stem's output and its
 * zero-padded channels-last copy, or the stem's im2col), and for SC the b × b Gram matrix, each within
 * `maxStorageBufferBindingSize`. A configuration that does not fit is refused with the sizes, the
 * limit, and the largest batch (or width) that fits ({@link DeviceLimitError}).
 * @module
 */
import { resnetWidths } from "../../models/resnet.ts";
import type { TrainConfig } from "./config.ts";

/** A configuration too large for the device (exit code 8 in `deno task train`). */
export class DeviceLimitError extends Error {
  /** The error with `message`. */
  constructor(message: string) {
    super(message);
    this.name = "DeviceLimitError";
  }
}

/** The image shape and classes of a run (known from the config before any data are read). */
export interface RunShape {
  /** Image channels. */
  channels: number;
  /** Image height. */
  height: number;
  /** Image width. */
  width: number;
  /** Classes K. */
  numClasses: number;
}

/** The image shape of a config's dataset. */
export function runShape(config: TrainConfig): RunShape {
  switch (config.dataset) {
    case "cifar10":
      return { channels: 3, height: 32, width: 32, numClasses: 10 };
    case "cifar100":
      return { channels: 3, height: 32, width: 32, numClasses: 100 };
    case "fashion-mnist":
      return { channels: 1, height: 28, width: 28, numClasses: 10 };
    default: {
      const s = config.syntheticSize;
      return { channels: 3, height: s, width: s, numClasses: config.syntheticClasses };
    }
  }
}

/** Floats of the parameter arena of ResNet-18 (+ classifier) at `width` (64-float aligned slots). */
export function parameterArenaFloats(width: number, shape: RunShape, withClassifier: boolean): number {
  const c = resnetWidths(width);
  const slot = (n: number) => Math.ceil(n / 64) * 64;
  let total = slot(9 * shape.channels * c[0]) + 2 * slot(c[0]);
  let inP = c[0];
  c.forEach((p, i) => {
    const stride = i === 0 ? 1 : 2;
    total += slot(9 * inP * p) + slot(9 * p * p) + 4 * slot(p);
    if (stride !== 1 || inP !== p) total += slot(inP * p) + 2 * slot(p);
    total += 2 * slot(9 * p * p) + 4 * slot(p);
    inP = p;
  });
  if (withClassifier) total += slot(c[3] * shape.numClasses);
  return total;
}

/** Bytes per image of the largest activation tensor of a training step. */
export function activationBytesPerImage(width: number, shape: RunShape): number {
  const c0 = resnetWidths(width)[0];
  const { height: H, width: W, channels: C } = shape;
  return 4 * Math.max(c0 * (H + 2) * (W + 2), 9 * Math.ceil(C / 4) * 4 * H * W);
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(b < 2 ** 24 ? 1 : 0)} MiB`;

/** Throws {@link DeviceLimitError} when the run cannot fit within `limits` (see the module doc). */
export function checkDeviceFit(
  config: TrainConfig,
  limits: { maxStorageBufferBindingSize?: number },
): void {
  const binding = limits.maxStorageBufferBindingSize ?? 128 * 2 ** 20;
  const shape = runShape(config);
  const withClassifier = config.loss !== "sc";
  const arena = 4 * parameterArenaFloats(config.width, shape, withClassifier);
  if (arena > binding) {
    let w = config.width;
    while (w > 0.001 && 4 * parameterArenaFloats(w, shape, withClassifier) > binding) {
      w = Math.floor(w * 0.95 * 1000) / 1000;
    }
    throw new DeviceLimitError(
      `--width ${config.width}: the model's parameters need ${mib(arena)} in one buffer, above the ` +
        `adapter's maxStorageBufferBindingSize (${mib(binding)}); the widest that fits is about --width ${w}`,
    );
  }
  const perImage = activationBytesPerImage(config.width, shape);
  let maxBatch = Math.floor(binding / perImage);
  if (config.loss === "sc") maxBatch = Math.min(maxBatch, Math.floor(Math.sqrt(binding / 4)));
  for (const [flag, b] of [["--batch", config.batch], ["--eval-batch", config.evalBatch]] as const) {
    if (b <= maxBatch) continue;
    const need = Math.max(b * perImage, config.loss === "sc" && flag === "--batch" ? 4 * b * b : 0);
    throw new DeviceLimitError(
      `${flag} ${b} does not fit the device: the largest tensor of a ${b}-image batch at --width ${config.width} ` +
        `on ${shape.height}×${shape.width} images is ${mib(need)}, above the adapter's ` +
        `maxStorageBufferBindingSize (${mib(binding)}); the largest batch that fits is ${maxBatch}`,
    );
  }
}
