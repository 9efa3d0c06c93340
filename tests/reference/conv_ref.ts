/**
 * Float64 CPU references of conv2d (NCHW input, OIHW weight, no bias): the forward and both
 * gradients as naive loops, written independently of the GEMM formulation (the gradients scatter
 * along the forward's loop nest).
 */

/** Sizes and hyper-parameters of one reference convolution. */
export interface ConvDims {
  N: number;
  C: number;
  H: number;
  W: number;
  O: number;
  KH: number;
  KW: number;
  stride: number;
  pad: number;
}

/** Output height and width. */
export function convOut(d: ConvDims): [number, number] {
  return [
    Math.floor((d.H + 2 * d.pad - d.KH) / d.stride) + 1,
    Math.floor((d.W + 2 * d.pad - d.KW) / d.stride) + 1,
  ];
}

/** Visits every (output element, weight tap, input element) triple with its flat indices. */
function forEachTap(d: ConvDims, visit: (yi: number, wi: number, xi: number) => void): void {
  const [OH, OW] = convOut(d);
  for (let n = 0; n < d.N; n++) {
    for (let o = 0; o < d.O; o++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const yi = ((n * d.O + o) * OH + oh) * OW + ow;
          for (let c = 0; c < d.C; c++) {
            for (let kh = 0; kh < d.KH; kh++) {
              const ih = oh * d.stride + kh - d.pad;
              if (ih < 0 || ih >= d.H) continue;
              for (let kw = 0; kw < d.KW; kw++) {
                const iw = ow * d.stride + kw - d.pad;
                if (iw < 0 || iw >= d.W) continue;
                visit(yi, ((o * d.C + c) * d.KH + kh) * d.KW + kw, ((n * d.C + c) * d.H + ih) * d.W + iw);
              }
            }
          }
        }
      }
    }
  }
}

/** y = conv2d(x, w) in float64, [N, O, OH, OW]. */
export function conv2dRef(x: ArrayLike<number>, w: ArrayLike<number>, d: ConvDims): Float64Array {
  const [OH, OW] = convOut(d);
  const y = new Float64Array(d.N * d.O * OH * OW);
  forEachTap(d, (yi, wi, xi) => (y[yi] += w[wi] * x[xi]));
  return y;
}

/** dL/dx for the output gradient dy, in float64, [N, C, H, W]. */
export function conv2dGradInputRef(dy: ArrayLike<number>, w: ArrayLike<number>, d: ConvDims): Float64Array {
  const dx = new Float64Array(d.N * d.C * d.H * d.W);
  forEachTap(d, (yi, wi, xi) => (dx[xi] += dy[yi] * w[wi]));
  return dx;
}

/** dL/dw for the output gradient dy, in float64, [O, C, KH, KW]. */
export function conv2dGradWeightRef(dy: ArrayLike<number>, x: ArrayLike<number>, d: ConvDims): Float64Array {
  const dw = new Float64Array(d.O * d.C * d.KH * d.KW);
  forEachTap(d, (yi, wi, xi) => (dw[wi] += dy[yi] * x[xi]));
  return dw;
}
