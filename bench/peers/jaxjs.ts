/**
 * The jax-js peer (`@jax-js/jax`, JAX's API in JavaScript, compiling its own WebGPU kernels): the
 * matmul, Gram and convolution cases of `bench/run.ts`, in the same Deno process and on the same adapter
 * as our engine and TF.js (each holds its own GPUDevice). Bench-only dependency: npm:@jax-js/jax@0.1.25.
 *
 * jax-js runs convolutions in our layout (NCHW inputs, OIHW filters, `lax.convGeneralDilated`). The
 * backward passes are `jax.vjp` of the forward with respect to the input or the filter, under `jax.jit`
 * (so the discarded forward output is not computed). jax-js counts references: every call consumes its
 * arguments, so the cases pass `.ref` to keep their inputs. Each case syncs with `jax.blockUntilReady` on
 * its last output and then reads back one element (the same end as the other engines' samples).
 */
// deno-lint-ignore no-import-prefix -- bench-only peer, pinned here (not in deno.json)
import * as jax from "npm:@jax-js/jax@0.1.25";
import { type BenchCase, convOut, type ConvShape } from "../harness.ts";

const { numpy: np, lax } = jax;

/** The pinned version (the npm specifier above). */
export const JAXJS_VERSION = "0.1.25";

/** What `initJaxjs` found. */
export interface JaxjsInfo {
  /** Package version. */
  version: string;
  /** The device the cases run on (`webgpu`). */
  device: string;
  /** The adapter jax-js's GPUDevice reports. */
  adapter: string;
}

let info: JaxjsInfo | null = null;

/** Initialises jax-js's WebGPU device (once) and makes it the default; throws when there is none. */
export async function initJaxjs(): Promise<JaxjsInfo> {
  if (info) return info;
  const devices = await jax.init("webgpu");
  if (!devices.includes("webgpu")) throw new Error(`jax-js: no webgpu device (found ${devices.join(", ")})`);
  jax.defaultDevice("webgpu");
  const device = jax.getWebGPUDevice() as GPUDevice & { adapterInfo?: GPUAdapterInfo };
  const a = device.adapterInfo;
  info = {
    version: JAXJS_VERSION,
    device: jax.defaultDevice(),
    adapter: [a?.vendor, a?.architecture, a?.description].filter((s) => s).join(", ") || "unknown",
  };
  return info;
}

/** `n` seeded normal(0, std) values (Box–Muller on a linear congruential generator). */
function normalValues(n: number, seed: number, std: number): Float32Array<ArrayBuffer> {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next()));
    const th = 2 * Math.PI * next();
    out[i] = std * r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = std * r * Math.sin(th);
  }
  return out;
}

/** A seeded normal(0, std) array of `shape` on the default device. */
function normal(shape: number[], seed: number, std = 1): jax.Array {
  return np.array(normalValues(shape.reduce((a, b) => a * b, 1), seed, std), { shape });
}

/** Waits for `t` and reads back one element (as the other engines' samples end). */
async function readScalar(t: jax.Array | null): Promise<void> {
  if (!t) return;
  await jax.blockUntilReady(t.ref);
  const one = t.ref.reshape([-1]).slice([0, 1]);
  await one.data();
}

/** A case whose step produces one array; the previous one is disposed at the next step. */
function outputCase(
  inputs: jax.Array[],
  produce: () => jax.Array,
  cleanup: () => void = () => {},
): BenchCase {
  let out: jax.Array | null = null;
  return {
    step: () => {
      out?.dispose();
      out = produce();
    },
    sync: () => readScalar(out),
    dispose: () => {
      out?.dispose();
      out = null;
      for (const t of inputs) t.dispose();
      cleanup();
    },
  };
}

/** `a·b` (or `a·bᵀ` with `transB`) for a [m, k] (b [k, n], or [n, k] with `transB`). */
export function jaxMatmul(m: number, k: number, n: number, { transB = false } = {}): BenchCase {
  const a = normal([m, k], 1);
  const b = normal(transB ? [n, k] : [k, n], 2);
  if (!transB) return outputCase([a, b], () => np.matmul(a.ref, b.ref));
  // a·bᵀ as one dot_general contracting both operands' last axis (no transposed copy of b).
  const f = jax.jit((x: jax.Array, y: jax.Array) =>
    lax.dot(x, y, { lhsContractingDims: [1], rhsContractingDims: [1] })
  );
  return outputCase([a, b], () => f(a.ref, b.ref), () => f.dispose());
}

/** Which pass of a convolution to time. */
export type ConvPass = "forward" | "grad-input" | "grad-weight";

/** One convolution pass in NCHW/OIHW: the forward, or the vjp of the forward in the input or the filter. */
export function jaxConv(c: ConvShape, pass: ConvPass): BenchCase {
  const { ho, wo } = convOut(c);
  const strides = [c.stride, c.stride];
  const padding: [number, number][] = [[c.pad, c.pad], [c.pad, c.pad]];
  const x = normal([c.n, c.cin, c.h, c.w], 3);
  const w = normal([c.cout, c.cin, c.k, c.k], 4, Math.sqrt(2 / (c.cin * c.k * c.k)));
  const dy = normal([c.n, c.cout, ho, wo], 5);
  const conv = (x: jax.Array, w: jax.Array) => lax.convGeneralDilated(x, w, strides, padding);
  if (pass === "forward") {
    const f = jax.jit(conv);
    return outputCase([x, w, dy], () => f(x.ref, w.ref), () => f.dispose());
  }
  const f = pass === "grad-input"
    ? jax.jit((x: jax.Array, w: jax.Array, g: jax.Array) => {
      const [y, pull] = jax.vjp((xx: jax.Array) => conv(xx, w), [x]);
      y.dispose();
      return pull(g)[0];
    })
    : jax.jit((x: jax.Array, w: jax.Array, g: jax.Array) => {
      const [y, pull] = jax.vjp((ww: jax.Array) => conv(x, ww), [w]);
      y.dispose();
      return pull(g)[0];
    });
  return outputCase([x, w, dy], () => f(x.ref, w.ref, dy.ref), () => f.dispose());
}
