/**
 * GPU batch augmentation against a CPU reference that follows torchvision literally: zero-pad by 4,
 * crop at (4 + dy, 4 + dx), flip horizontally, normalise with per-channel mean/std.
 */
import assert from "node:assert/strict";
import { assertClose, rng, setup } from "./util.ts";
import { test } from "./harness.ts";
import { ShapeError, tensor } from "../engine/tensor.ts";
import { augmentBatch, augmentParams, uploadImages } from "../engine/ops/augment.ts";

function augmentRef(
  u8: Uint8Array,
  [, c, h, w]: number[],
  indices: ArrayLike<number>,
  params: ArrayLike<number> | null,
  mean: number[],
  std: number[],
  pad = 4,
): Float64Array {
  const b = indices.length;
  const out = new Float64Array(b * c * h * w);
  const ph = h + 2 * pad, pw = w + 2 * pad;
  for (let s = 0; s < b; s++) {
    const img = indices[s];
    const [dx, dy, flip] = params ? [params[3 * s], params[3 * s + 1], params[3 * s + 2]] : [0, 0, 0];
    for (let ch = 0; ch < c; ch++) {
      // Zero-padded plane, then crop of size h×w at (pad + dy, pad + dx), then flip.
      const padded = new Float64Array(ph * pw);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) padded[(y + pad) * pw + x + pad] = u8[((img * c + ch) * h + y) * w + x];
      }
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const cx = flip ? w - 1 - x : x;
          const v = padded[(y + pad + dy) * pw + cx + pad + dx];
          out[((s * c + ch) * h + y) * w + x] = (v / 255 - mean[ch]) / std[ch];
        }
      }
    }
  }
  return out;
}

function randomImages(n: number, c: number, h: number, w: number, seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: n * c * h * w }, () => Math.floor(r() * 256));
}

const MEAN = [0.4914, 0.4822, 0.4465];
const STD = [0.247, 0.2435, 0.2616];

test({
  name: "augmentBatch: crop, flip, padding value and normalisation vs CPU (W = 11, repeated indices)",
  fn: async () => {
    await setup();
    const shape = [9, 3, 7, 11] as [number, number, number, number];
    const u8 = randomImages(...shape, 1);
    const images = uploadImages(u8, shape);
    assert.deepEqual(images.shape, [9, 3, 7, 3]);
    const idx = Int32Array.from([0, 8, 3, 3, 5, 1, 8, 2, 7, 6, 4, 0, 3]);
    const b = idx.length;
    const p = augmentParams(b, rng(2));
    // Extremes of the crop, with and without flip.
    p.set([-4, -4, 0, 4, 4, 1, -4, 4, 1, 4, -4, 0], 0);
    assert.ok(p.every((v, i) => (i % 3 === 2 ? v === 0 || v === 1 : Math.abs(v) <= 4)));
    const indices = tensor(idx, [b], { dtype: "i32" });
    const params = tensor(p, [b, 3], { dtype: "i32" });
    const expected = augmentRef(u8, shape, idx, p, MEAN, STD);
    const out = augmentBatch(images, indices, params, { crop: 4, flip: true, mean: MEAN, std: STD });
    assert.deepEqual(out.shape, [b, 3, 7, 11]);
    const got = await out.toArray();
    assertClose(got, expected, { rtol: 1e-5, atol: 1e-5, label: "augmented" });
    // Padded pixels: sample 0 is shifted by (−4, −4), so its top-left pixel is padding.
    assertClose([got[0]], [-MEAN[0] / STD[0]], { rtol: 1e-6, atol: 1e-6, label: "padding value" });
    // The dataset (2,268 bytes) bound in three 1 KiB chunks, as CIFAR-10 train exceeds one 128 MiB binding:
    // six storage buffers in all, within WebGPU's default of 8 per stage (SwiftShader allows 10).
    const chunked = augmentBatch(images, indices, params, { mean: MEAN, std: STD, maxBindingBytes: 1024 });
    assertClose(await chunked.toArray(), expected, { rtol: 1e-5, atol: 1e-5, label: "chunked" });
    // No augmentation: params null, or flip off and crop 0 with the same params.
    const plain = augmentRef(u8, shape, idx, null, MEAN, STD);
    assertClose(await augmentBatch(images, indices, null, { mean: MEAN, std: STD }).toArray(), plain, {
      rtol: 1e-5,
      atol: 1e-5,
      label: "no params",
    });
    const off = augmentBatch(images, indices, params, { crop: 0, flip: false, mean: MEAN, std: STD });
    assertClose(await off.toArray(), plain, { rtol: 1e-5, atol: 1e-5, label: "crop 0, flip off" });
  },
});

test({
  name: "augmentBatch: W multiple of 4 (no repacking), 1 channel; bad index gives NaN; shape errors",
  fn: async () => {
    const g = await setup();
    const shape = [5, 1, 6, 8] as [number, number, number, number];
    const u8 = randomImages(...shape, 3);
    const images = uploadImages(u8, shape);
    const idx = Int32Array.from([4, 0, 2, 2, 1, 3, 0]);
    const p = augmentParams(idx.length, rng(4), { crop: 2 });
    const indices = tensor(idx, [idx.length], { dtype: "i32" });
    const params = tensor(p, [idx.length, 3], { dtype: "i32" });
    const out = augmentBatch(images, indices, params, { crop: 2, mean: [0.5], std: [0.25] });
    assertClose(await out.toArray(), augmentRef(u8, shape, idx, p, [0.5], [0.25], 2), {
      rtol: 1e-5,
      atol: 1e-5,
      label: "1 channel",
    });
    const bad = augmentBatch(images, tensor([1, 5], [2], { dtype: "i32" }), null, {
      mean: [0.5],
      std: [0.25],
    });
    const got = await bad.toArray();
    assert.ok(got.slice(0, 48).every(Number.isFinite) && got.slice(48).every(Number.isNaN));
    assert.throws(() => augmentBatch(images, indices, params, { mean: MEAN, std: STD }), ShapeError);
    // f32 indices and f32 params are refused (tensor() would make the Int32Arrays i32).
    const f32 = { dtype: "f32" } as const;
    assert.throws(
      () => augmentBatch(images, tensor(idx, [7], f32), null, { mean: [0], std: [1] }),
      ShapeError,
    );
    assert.throws(
      () => augmentBatch(images, indices, tensor(p, [7, 3], f32), { mean: [0], std: [1] }),
      ShapeError,
    );
    assert.throws(() => uploadImages(u8.subarray(1), shape), ShapeError);
    // A dataset bound in more chunks than the adapter has storage buffers per stage: a ShapeError naming
    // the limit (each 1×1×256 image is one 256-byte chunk; with out and indices, limit + 1 bindings).
    const limit = g.report.limits.maxStorageBuffersPerShaderStage ?? 8;
    if (limit <= 4096) {
      const many = uploadImages(new Uint8Array((limit - 1) * 256), [limit - 1, 1, 1, 256]);
      assert.throws(
        () =>
          augmentBatch(many, tensor([0], [1], { dtype: "i32" }), null, {
            mean: [0],
            std: [1],
            maxBindingBytes: 256,
          }),
        (e: Error) => e instanceof ShapeError && /storage buffers/.test(e.message),
      );
      many.dispose();
    }
  },
});
