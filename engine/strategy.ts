/**
 * Kernel strategies: which family of kernels the engine generates for an adapter.
 *
 * - `"software"`: for CPU rasterisers (llvmpipe, SwiftShader, WARP), where workgroup barriers are slow and a
 *   GEMM is bound by its loads: register-blocked GEMMs without workgroup memory, channels-last convolution
 *   routes with vec4 loads, the dot-product register kernel, the stem's 27-row block.
 * - `"gpu"`: for hardware GPUs: workgroup-memory GEMM tiles, and the convolution routes that go with them.
 *
 * `"auto"` (the default) picks `"software"` on a fallback adapter and `"gpu"` otherwise. Forcing `"gpu"` on a
 * software adapter runs, slowly but exactly, the kernels a desktop GPU would run: that is how the test
 * suite covers both families on one machine. Results agree up to float32 summation order.
 *
 * @module
 */
import type { AdapterReport } from "./device.ts";
import { GpuError } from "./device.ts";

/** A family of kernels (see the module doc). */
export type KernelStrategy = "software" | "gpu";

/** What a user may ask for: a strategy, or `"auto"` to choose by adapter. */
export type KernelStrategyOption = "auto" | KernelStrategy;

/** The environment variable that selects the strategy when `initDevice` is given none. */
export const KERNELS_ENV = "SUPCON_KERNELS";

const OPTIONS: readonly string[] = ["auto", "software", "gpu"];

/**
 * The strategy for `report`'s adapter given a requested option (from `initDevice({ kernels })`, else the
 * environment); throws a GpuError naming the source on an unknown value.
 */
export function resolveKernelStrategy(
  requested: string | undefined,
  report: Pick<AdapterReport, "isFallback">,
  source = "kernels",
): KernelStrategy {
  const value = requested?.trim() || "auto";
  if (!OPTIONS.includes(value)) {
    throw new GpuError(`${source}=${JSON.stringify(requested)}: expected one of ${OPTIONS.join(", ")}`);
  }
  if (value === "auto") return report.isFallback ? "software" : "gpu";
  return value as KernelStrategy;
}
