/**
 * Tuning modes: whether the engine picks each GEMM's kernel by heuristic, by a cached measurement, or
 * measures the candidates itself (see `engine/tune/tuner.ts`).
 *
 * - `"off"`: the heuristic of the kernel strategy (`engine/strategy.ts`), as before tuning existed.
 * - `"cached"` (default): a winner measured earlier on this adapter and engine version where the cache has
 *   one, the heuristic elsewhere. Adds no time to a run.
 * - `"measure"`: like `"cached"`, and every shape class the cache lacks is timed on its first use (between
 *   training steps, or by `deno task tune`) and its winner cached.
 *
 * @module
 */
import { GpuError } from "../device.ts";

/** How kernels are chosen (see the module doc). */
export type TuningMode = "off" | "cached" | "measure";

/** The environment variable that selects the mode when `initDevice` is given none. */
export const TUNING_ENV = "SUPCON_TUNING";

/** The environment variable naming the cache file (default: the user's cache folder). */
export const TUNING_CACHE_ENV = "SUPCON_TUNING_CACHE";

const MODES: readonly string[] = ["off", "cached", "measure"];

/** The mode for a requested value (`undefined` or empty: "cached"); throws a GpuError naming `source`. */
export function resolveTuningMode(requested: string | undefined, source = "tuning"): TuningMode {
  const value = requested?.trim() || "cached";
  if (!MODES.includes(value)) {
    throw new GpuError(`${source}=${JSON.stringify(requested)}: expected one of ${MODES.join(", ")}`);
  }
  return value as TuningMode;
}
