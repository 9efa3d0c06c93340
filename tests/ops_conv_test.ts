/**
 * conv2d forward, grad input and grad weight against float64 references, on both GEMM tilings, for
 * odd channel counts and spatial sizes, strides 1–3, paddings 0–2, kernels 1–3 and non-square ones.
 * The naive float64 gradient references are themselves checked by finite differences.
 */
import { throws } from "node:assert/strict";
import { assertClose, dot, numericGrad, randomArray, setup } from "./util.ts";
import { test } from "./harness.ts";
import { ShapeError, tensor } from "../engine/tensor.ts";
import { setGemmTiling } from "../engine/ops/matmul.ts";
import { conv2d, conv2dGradInputInto, convGeometry, gradWeightSplit } from "../engine/ops/conv.ts";
import { setChannelsLastChunkBytes } from "../engine/ops/conv_channels_last.ts";
import { gpu } from "../engine/gpu.ts";
import { empty } from "../engine/tensor.ts";
import { type GemmTiling, REGISTER_TILING, SHARED_TILING } from "../shaders/gemm.ts";
import {
  conv2dGradInputRef,
  conv2dGradWeightRef,
  conv2dRef,
  type ConvDims,
  convOut,
} from "./reference/conv_ref.ts";

const TILINGS: [string, GemmTiling][] = [["register", REGISTER_TILING], ["shared", SHARED_TILING]];

const CONFIGS: ConvDims[] = [
  { N: 2, C: 3, H: 7, W: 9, O: 5, KH: 3, KW: 3, stride: 1, pad: 1 }, // odd everything
  { N: 2, C: 5, H: 9, W: 7, O: 6, KH: 3, KW: 3, stride: 2, pad: 1 }, // stride 2, odd spatial
  { N: 1, C: 4, H: 8, W: 8, O: 8, KH: 1, KW: 1, stride: 2, pad: 0 }, // 1×1 stride-2 shortcut
  { N: 3, C: 8, H: 8, W: 8, O: 8, KH: 3, KW: 3, stride: 1, pad: 1 }, // vec4 paths (ResNet-like)
  { N: 2, C: 4, H: 8, W: 8, O: 12, KH: 3, KW: 3, stride: 2, pad: 1 }, // stride 2, vec4 paths
  { N: 2, C: 3, H: 6, W: 11, O: 4, KH: 2, KW: 3, stride: 1, pad: 2 }, // non-square kernel, pad 2
  { N: 2, C: 3, H: 10, W: 9, O: 4, KH: 3, KW: 2, stride: 3, pad: 2 }, // stride 3
  { N: 1, C: 16, H: 4, W: 4, O: 16, KH: 3, KW: 3, stride: 1, pad: 0 }, // no padding, tiny output
  { N: 2, C: 4, H: 7, W: 9, O: 8, KH: 1, KW: 1, stride: 2, pad: 0 }, // 1×1 s2, odd: fused zero phases
  { N: 4, C: 3, H: 16, W: 16, O: 8, KH: 3, KW: 3, stride: 1, pad: 1 }, // split-K grad weight, scalar sum
  { N: 8, C: 4, H: 12, W: 12, O: 8, KH: 3, KW: 3, stride: 1, pad: 1 }, // split-K grad weight, vec4 sum
];

/** Tolerance for f32 sums of `terms` products of values in [-1, 1]. */
const tol = (terms: number) => ({ rtol: 1e-4, atol: 1e-4 * Math.sqrt(Math.max(1, terms)) });

/** Runs conv2d forward and backward on random data of shape `d` and checks all three against float64. */
async function checkConv(d: ConvDims, seed: number): Promise<void> {
  const [OH, OW] = convOut(d);
  const x = randomArray(d.N * d.C * d.H * d.W, seed);
  const w = randomArray(d.O * d.C * d.KH * d.KW, seed + 1);
  const dy = randomArray(d.N * d.O * OH * OW, seed + 2);
  const tx = tensor(x, [d.N, d.C, d.H, d.W], { requiresGrad: true });
  const tw = tensor(w, [d.O, d.C, d.KH, d.KW], { requiresGrad: true });
  const y = conv2d(tx, tw, { stride: d.stride, padding: d.pad });
  const name = JSON.stringify(d);
  if (y.shape.join() !== [d.N, d.O, OH, OW].join()) throw new Error(`shape ${y.shape} for ${name}`);
  assertClose(await y.toArray(), conv2dRef(x, w, d), { ...tol(d.C * d.KH * d.KW), label: `forward ${name}` });
  y.backward(tensor(dy, y.shape));
  assertClose(await tx.grad!.toArray(), conv2dGradInputRef(dy, w, d), {
    ...tol(d.O * d.KH * d.KW),
    label: `grad input ${name}`,
  });
  assertClose(await tw.grad!.toArray(), conv2dGradWeightRef(dy, x, d), {
    ...tol(d.N * OH * OW),
    label: `grad weight ${name}`,
  });
  [tx, tw, y].forEach((t) => t.dispose());
}

for (const [label, tiling] of TILINGS) {
  test({
    name: `conv2d: forward, grad input and grad weight vs float64 references (${label} tiling)`,
    async fn() {
      await setup();
      setGemmTiling(tiling);
      try {
        let seed = 1;
        for (const d of CONFIGS) {
          await checkConv(d, seed);
          seed += 3;
        }
      } finally {
        setGemmTiling(null);
      }
    },
  });
}

test({
  name: "conv2d: ResNet-18 shapes (3×3 s1/s2 p1, 1×1 s2 p0) at small batch, default tiling",
  async fn() {
    await setup();
    let seed = 50;
    const shapes: ConvDims[] = [
      { N: 2, C: 3, H: 16, W: 16, O: 16, KH: 3, KW: 3, stride: 1, pad: 1 },
      { N: 1, C: 16, H: 16, W: 16, O: 32, KH: 3, KW: 3, stride: 2, pad: 1 },
      { N: 1, C: 16, H: 16, W: 16, O: 32, KH: 1, KW: 1, stride: 2, pad: 0 },
      { N: 3, C: 64, H: 4, W: 4, O: 64, KH: 3, KW: 3, stride: 1, pad: 1 },
      { N: 4, C: 8, H: 32, W: 32, O: 16, KH: 1, KW: 1, stride: 2, pad: 0 }, // split-K 1×1 grad weight
    ];
    for (const d of shapes) {
      await checkConv(d, seed);
      seed += 3;
    }
  },
});

test({
  name: "conv2d reference: naive gradients agree with float64 finite differences",
  fn() {
    for (const d of [CONFIGS[1], { N: 1, C: 2, H: 5, W: 4, O: 3, KH: 2, KW: 3, stride: 3, pad: 2 }]) {
      const [OH, OW] = convOut(d);
      const x = randomArray(d.N * d.C * d.H * d.W, 7);
      const w = randomArray(d.O * d.C * d.KH * d.KW, 8);
      const r = randomArray(d.N * d.O * OH * OW, 9);
      const gx = numericGrad((xv) => dot(conv2dRef(xv, w, d), r), x);
      const gw = numericGrad((wv) => dot(conv2dRef(x, wv, d), r), w);
      assertClose(conv2dGradInputRef(r, w, d), gx, { rtol: 1e-6, atol: 1e-8, label: "dx" });
      assertClose(conv2dGradWeightRef(r, x, d), gw, { rtol: 1e-6, atol: 1e-8, label: "dw" });
    }
  },
});

test({
  name: "conv2d: only the gradient that is needed is computed",
  async fn() {
    await setup();
    const d = CONFIGS[0];
    const x = randomArray(d.N * d.C * d.H * d.W, 1);
    const w = randomArray(d.O * d.C * d.KH * d.KW, 2);
    const tx = tensor(x, [d.N, d.C, d.H, d.W]);
    const tw = tensor(w, [d.O, d.C, d.KH, d.KW], { requiresGrad: true });
    const y = conv2d(tx, tw, { stride: d.stride, padding: d.pad });
    const dy = randomArray(y.size, 3);
    y.backward(tensor(dy, y.shape));
    if (tx.grad) throw new Error("x got a gradient");
    assertClose(await tw.grad!.toArray(), conv2dGradWeightRef(dy, x, d), { ...tol(200), label: "dw" });
  },
});

test({
  name: "conv2d: shape errors name the op and both shapes",
  async fn() {
    await setup();
    const x = tensor(new Float32Array(2 * 3 * 5 * 5), [2, 3, 5, 5]);
    const isErr = (re: RegExp) => (e: Error) => e instanceof ShapeError && re.test(e.message);
    throws(
      () => conv2d(x, tensor(new Float32Array(4 * 2 * 9), [4, 2, 3, 3])),
      isErr(/conv2d.*\[2, 3, 5, 5\].*\[4, 2, 3, 3\]/),
    );
    throws(
      () => conv2d(x, tensor(new Float32Array(4 * 3 * 49), [4, 3, 7, 7])),
      isErr(/conv2d.*\[2, 3, 5, 5\].*\[4, 3, 7, 7\]/),
    );
    throws(
      () => conv2d(tensor(new Float32Array(75), [3, 5, 5]), tensor(new Float32Array(27), [1, 3, 3, 3])),
      isErr(/conv2d/),
    );
    throws(
      () => conv2d(x, tensor(new Float32Array(27), [1, 3, 3, 3]), { stride: 0 }),
      isErr(/conv2d.*stride/),
    );
  },
});

test({
  name: "conv2d: split-K grad weight and fused zero phases take the intended paths",
  async fn() {
    await setup();
    for (const [label, tiling] of TILINGS) {
      setGemmTiling(tiling);
      try {
        // The split configurations of CONFIGS (checked against the reference above) really split.
        for (const d of CONFIGS.slice(-2)) {
          const x = tensor(new Float32Array(d.N * d.C * d.H * d.W), [d.N, d.C, d.H, d.W]);
          const w = tensor(new Float32Array(d.O * d.C * d.KH * d.KW), [d.O, d.C, d.KH, d.KW]);
          const groups = gradWeightSplit(convGeometry(x, w, d.stride, d.pad));
          if (groups < 2) throw new Error(`${label}: ${JSON.stringify(d)} not split (${groups})`);
          [x, w].forEach((t) => t.dispose());
        }
        // Large dw outputs are not split.
        const big = convGeometry(
          tensor(new Float32Array(2 * 64 * 8 * 8), [2, 64, 8, 8]),
          tensor(new Float32Array(128 * 64 * 9), [128, 64, 3, 3]),
          1,
          1,
        );
        if (gradWeightSplit(big) !== 1) throw new Error(`${label}: 64→128 grad weight split`);
        // 1×1 stride 2: one weight copy and one GEMM (which also zeroes the unreached pixels).
        const d = CONFIGS[CONFIGS.length - 3];
        const x = tensor(new Float32Array(d.N * d.C * d.H * d.W), [d.N, d.C, d.H, d.W]);
        const w = tensor(new Float32Array(d.O * d.C), [d.O, d.C, 1, 1]);
        const g = convGeometry(x, w, 2, 0);
        const dy = tensor(new Float32Array(d.N * d.O * g.OH * g.OW), [d.N, d.O, g.OH, g.OW]);
        const dx = empty(x.shape);
        await gpu().sync();
        const poison = gpu().poison;
        gpu().poison = false; // count the op's dispatches, not the poisoning of its temporaries
        const before = gpu().counters.dispatches;
        conv2dGradInputInto(dx, dy, w, g);
        const n = gpu().counters.dispatches - before;
        gpu().poison = poison;
        if (n !== 2) throw new Error(`${label}: 1×1 s2 grad input used ${n} dispatches, expected 2`);
        [x, w, dy, dx].forEach((t) => t.dispose());
      } finally {
        setGemmTiling(null);
      }
    }
  },
});

for (const chunked of [false, true]) {
  test({
    name: `conv2d: channels-last forward and grad-input phases${
      chunked ? ", in image chunks (large-batch memory bound)," : ""
    } match float64 references`,
    async fn() {
      await setup();
      setGemmTiling(REGISTER_TILING);
      // A limit of ~one image's copy forces chunks of 1–2 images. On the register tiling the
      // channels-last forward (grad input) is taken for spatial kernels when C (O) % 4 == 0.
      if (chunked) setChannelsLastChunkBytes(2 * 14 * 14 * 8 * 4);
      try {
        let seed = 70;
        const shapes: ConvDims[] = [
          { N: 4, C: 8, H: 12, W: 12, O: 128, KH: 3, KW: 3, stride: 1, pad: 1 },
          { N: 4, C: 128, H: 12, W: 12, O: 8, KH: 3, KW: 3, stride: 1, pad: 1 },
          { N: 4, C: 128, H: 23, W: 24, O: 6, KH: 3, KW: 3, stride: 2, pad: 1 }, // 4 phases, odd H
          { N: 2, C: 128, H: 24, W: 22, O: 8, KH: 1, KW: 1, stride: 2, pad: 0 }, // tapless phases zeroed
          { N: 4, C: 8, H: 12, W: 12, O: 16, KH: 1, KW: 1, stride: 2, pad: 0 },
          { N: 4, C: 3, H: 8, W: 8, O: 8, KH: 3, KW: 3, stride: 1, pad: 1 }, // stem-like: im2col grad weight
        ];
        for (const d of shapes) {
          await checkConv(d, seed);
          seed += 3;
        }
      } finally {
        setChannelsLastChunkBytes(null);
        setGemmTiling(null);
      }
    },
  });
}
