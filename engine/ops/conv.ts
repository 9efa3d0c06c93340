/**
 * 2-D convolution (NCHW input, OIHW weight, no bias) as implicit GEMMs through the template of
 * `shaders/gemm.ts`; nothing is unfolded into memory beyond transient copies of an input in a layout the
 * GEMM loads as vec4s. The passes live beside this file: `conv_forward.ts`, `conv_grad_input.ts`,
 * `conv_grad_weight.ts`, with `conv_common.ts` (geometry, shared WGSL) and `conv_channels_last.ts` (the
 * channels-last GEMMs). Which route a pass takes is chosen per layer shape and adapter, as measured in
 * BENCHMARKS.md.
 *
 * @module
 */
import { empty, type Tensor } from "../tensor.ts";
import { gradTarget, record } from "../autograd.ts";
import { convGeometry } from "./conv_common.ts";
import { conv2dForwardInto } from "./conv_forward.ts";
import { conv2dGradInputInto } from "./conv_grad_input.ts";
import { conv2dGradWeightInto } from "./conv_grad_weight.ts";

export { type ConvGeometry, convGeometry } from "./conv_common.ts";
export { conv2dForwardInto } from "./conv_forward.ts";
export { conv2dGradInputInto } from "./conv_grad_input.ts";
export { conv2dGradWeightInto, gradWeightSplit } from "./conv_grad_weight.ts";

/** Options of `conv2d`. */
export interface Conv2dOptions {
  /** Step between output pixels (both axes). Default 1. */
  stride?: number;
  /** Zero padding on every side. Default 0. */
  padding?: number;
}

/**
 * 2-D convolution without bias: x [N, C, H, W] (NCHW), w [O, C, KH, KW] (OIHW) → [N, O, OH, OW] with
 * OH = ⌊(H + 2·padding − KH)/stride⌋ + 1 (likewise OW). Differentiable in x and w (implicit GEMMs).
 */
export function conv2d(x: Tensor, w: Tensor, { stride = 1, padding = 0 }: Conv2dOptions = {}): Tensor {
  const g = convGeometry(x, w, stride, padding);
  const y = empty([g.N, g.O, g.OH, g.OW]);
  if (y.size === 0) return y;
  conv2dForwardInto(y, x, w, g);
  return record("conv2d", [x, w], y, (dy) => {
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    if (x.requiresGrad) {
      dx = empty(x.shape);
      conv2dGradInputInto(dx, dy, w, g);
    }
    if (w.requiresGrad) {
      dw = gradTarget(w);
      conv2dGradWeightInto(dw, x, dy, g);
    }
    return [dx, dw];
  });
}
