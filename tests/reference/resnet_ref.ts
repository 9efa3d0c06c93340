/**
 * Float64 CPU reference of the ResNet-18 forward (both variants of `models/resnet.ts`), taking the
 * weights from a state dict (`Module.stateDict()`), so GPU and CPU run the same network.
 *
 * BatchNorm in training mode normalises with the batch mean and the biased batch variance and
 * updates running statistics PyTorch's way (running_var takes the unbiased variance n/(n−1)·σ²);
 * in eval mode it uses the running statistics.
 *
 * @module
 */

/** Weights by state-dict key. */
export type RefWeights = Record<string, { shape: readonly number[]; data: ArrayLike<number> }>;

/** A float64 NCHW activation. */
export interface Act {
  /** Values, row-major. */
  data: Float64Array;
  /** [N, C, H, W]. */
  shape: [number, number, number, number];
}

/** Options of {@link resnetRef}. */
export interface ResNetRefOptions {
  /** `standard` or `preact`. */
  variant: "standard" | "preact";
  /** BatchNorm with batch statistics (true) or running statistics (false). */
  training: boolean;
  /** Running-statistics momentum (0.1). */
  momentum?: number;
  /** Variance epsilon (1e-5). */
  eps?: number;
}

/** Result of {@link resnetRef}. */
export interface ResNetRefResult {
  /** Features [N, C] row-major. */
  features: Float64Array;
  /** Feature dimension C. */
  dim: number;
  /** Running statistics after the forward (updated in training mode), by state-dict key. */
  running: Record<string, Float64Array>;
}

function get(w: RefWeights, key: string): { shape: readonly number[]; data: ArrayLike<number> } {
  const e = w[key];
  if (!e) throw new Error(`resnetRef: missing weight ${key}`);
  return e;
}

/** Float64 convolution (no bias) of x [N, C, H, W] with w [O, C, k, k]. */
export function conv2dRef(
  x: Act,
  w: { shape: readonly number[]; data: ArrayLike<number> },
  stride: number,
  padding: number,
): Act {
  const [n, c, h, wd] = x.shape;
  const [o, ci, k, k2] = w.shape;
  if (ci !== c || k !== k2) throw new Error(`conv2dRef: input [${x.shape}] weight [${w.shape}]`);
  const ho = Math.floor((h + 2 * padding - k) / stride) + 1;
  const wo = Math.floor((wd + 2 * padding - k) / stride) + 1;
  const out = new Float64Array(n * o * ho * wo);
  const xd = x.data;
  const wdt = w.data;
  for (let b = 0; b < n; b++) {
    for (let oc = 0; oc < o; oc++) {
      const obase = (b * o + oc) * ho * wo;
      for (let ic = 0; ic < c; ic++) {
        const xbase = (b * c + ic) * h * wd;
        const wbase = (oc * c + ic) * k * k;
        for (let ky = 0; ky < k; ky++) {
          for (let kx = 0; kx < k; kx++) {
            const wv = wdt[wbase + ky * k + kx];
            for (let oy = 0; oy < ho; oy++) {
              const iy = oy * stride - padding + ky;
              if (iy < 0 || iy >= h) continue;
              for (let ox = 0; ox < wo; ox++) {
                const ix = ox * stride - padding + kx;
                if (ix < 0 || ix >= wd) continue;
                out[obase + oy * wo + ox] += wv * xd[xbase + iy * wd + ix];
              }
            }
          }
        }
      }
    }
  }
  return { data: out, shape: [n, o, ho, wo] };
}

/**
 * Float64 BatchNorm2d with weights `${prefix}.weight|bias|running_mean|running_var`; in training
 * mode writes the updated running statistics into `running`.
 */
export function batchNormRef(
  x: Act,
  w: RefWeights,
  prefix: string,
  training: boolean,
  running: Record<string, Float64Array>,
  momentum = 0.1,
  eps = 1e-5,
): Act {
  const [n, c, h, wd] = x.shape;
  const hw = h * wd;
  const gamma = get(w, `${prefix}.weight`).data;
  const beta = get(w, `${prefix}.bias`).data;
  const rmKey = `${prefix}.running_mean`;
  const rvKey = `${prefix}.running_var`;
  const rm = running[rmKey] ?? Float64Array.from(get(w, rmKey).data);
  const rv = running[rvKey] ?? Float64Array.from(get(w, rvKey).data);
  const out = new Float64Array(x.data.length);
  const count = n * hw;
  for (let ch = 0; ch < c; ch++) {
    let mean: number, variance: number;
    if (training) {
      let s = 0;
      for (let b = 0; b < n; b++) for (let i = 0; i < hw; i++) s += x.data[(b * c + ch) * hw + i];
      mean = s / count;
      let v = 0;
      for (let b = 0; b < n; b++) {
        for (let i = 0; i < hw; i++) v += (x.data[(b * c + ch) * hw + i] - mean) ** 2;
      }
      variance = v / count;
      rm[ch] = (1 - momentum) * rm[ch] + momentum * mean;
      rv[ch] = (1 - momentum) * rv[ch] + momentum * (count > 1 ? (v / (count - 1)) : variance);
    } else {
      mean = rm[ch];
      variance = rv[ch];
    }
    const scale = gamma[ch] / Math.sqrt(variance + eps);
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < hw; i++) {
        const j = (b * c + ch) * hw + i;
        out[j] = (x.data[j] - mean) * scale + beta[ch];
      }
    }
  }
  running[rmKey] = rm;
  running[rvKey] = rv;
  return { data: out, shape: x.shape };
}

/** Elementwise max(x, 0). */
export function reluRef(x: Act): Act {
  return { data: x.data.map((v) => (v > 0 ? v : 0)), shape: x.shape };
}

/** Elementwise a + b (same shape). */
export function addRef(a: Act, b: Act): Act {
  if (a.data.length !== b.data.length) throw new Error(`addRef: [${a.shape}] + [${b.shape}]`);
  return { data: a.data.map((v, i) => v + b.data[i]), shape: a.shape };
}

/** Mean over H, W: [N, C, H, W] → [N, C] row-major. */
export function globalAvgPoolRef(x: Act): Float64Array {
  const [n, c, h, w] = x.shape;
  const hw = h * w;
  const out = new Float64Array(n * c);
  for (let i = 0; i < n * c; i++) {
    let s = 0;
    for (let j = 0; j < hw; j++) s += x.data[i * hw + j];
    out[i] = s / hw;
  }
  return out;
}

/**
 * The ResNet-18 forward in float64 with the given weights (stage widths and shortcuts are read from
 * the keys), returning the pooled features and the (updated) running statistics.
 */
export function resnetRef(weights: RefWeights, x: Act, options: ResNetRefOptions): ResNetRefResult {
  const { variant, training, momentum = 0.1, eps = 1e-5 } = options;
  const running: Record<string, Float64Array> = {};
  const bn = (a: Act, prefix: string) => batchNormRef(a, weights, prefix, training, running, momentum, eps);
  const conv = (a: Act, key: string, stride: number, padding: number) =>
    conv2dRef(a, get(weights, key), stride, padding);
  const strides = [1, 2, 2, 2];

  let h = conv(x, "conv1.weight", 1, 1);
  if (variant === "standard") h = reluRef(bn(h, "bn1"));
  for (let s = 0; s < 4; s++) {
    for (let blk = 0; blk < 2; blk++) {
      const p = `layer${s + 1}.${blk}`;
      const stride = blk === 0 ? strides[s] : 1;
      const hasShortcut = `${p}.shortcut.0.weight` in weights;
      if (variant === "standard") {
        const a = reluRef(bn(conv(h, `${p}.conv1.weight`, stride, 1), `${p}.bn1`));
        const b = bn(conv(a, `${p}.conv2.weight`, 1, 1), `${p}.bn2`);
        const sc = hasShortcut ? bn(conv(h, `${p}.shortcut.0.weight`, stride, 0), `${p}.shortcut.1`) : h;
        h = reluRef(addRef(b, sc));
      } else {
        const a = reluRef(bn(h, `${p}.bn1`));
        const sc = hasShortcut ? conv(a, `${p}.shortcut.0.weight`, stride, 0) : h;
        const b = conv(
          reluRef(bn(conv(a, `${p}.conv1.weight`, stride, 1), `${p}.bn2`)),
          `${p}.conv2.weight`,
          1,
          1,
        );
        h = addRef(b, sc);
      }
    }
  }
  return { features: globalAvgPoolRef(h), dim: h.shape[1], running };
}
