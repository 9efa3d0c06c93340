/**
 * Pooling: `globalAvgPool` (NCHW → [N, C]), the last layer of the ResNet encoder.
 */
import { fmtShape, ShapeError, type Tensor } from "../tensor.ts";
import { mean } from "./reduce.ts";

/**
 * Mean over the spatial axes of an NCHW tensor → `[N, C]` (one kernel: the reduction merges H and W,
 * so each invocation averages one contiguous H·W run). Backward spreads each gradient as `g / (H·W)`
 * over its H·W positions.
 */
export function globalAvgPool(x: Tensor): Tensor {
  if (x.rank !== 4 || x.dtype !== "f32") {
    throw new ShapeError("globalAvgPool", `expects an f32 NCHW tensor, got ${x.dtype}${fmtShape(x.shape)}`);
  }
  return mean(x, [2, 3]);
}
