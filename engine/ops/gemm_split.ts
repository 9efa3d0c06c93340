/**
 * Split-K dispatch of a GEMM whose contraction is too long for one invocation's loop budget (see
 * `shaders/gemm_split.ts`): one chunked GEMM into a transient scratch buffer of S·batch·M·N floats, then a
 * fixed-order sum through the caller's `writeC` (deterministic, no atomics). `dispatchGemm` routes here.
 *
 * @module
 */
import { read, runKernel, write } from "../program.ts";
import { empty, ShapeError } from "../tensor.ts";
import type { GemmProgram } from "./matmul.ts";
import { grid1d } from "../../shaders/common.ts";
import type { GemmTiling } from "../../shaders/gemm.ts";
import { type GemmSizes, splitK, splitKHooks, splitKSumCode } from "../../shaders/gemm_split.ts";

/** What `dispatchGemm` does with a GEMM that fits the loop budget. */
export type GemmDispatch = (name: string, sizes: GemmSizes, gemm: GemmProgram, tiling: GemmTiling) => void;

/**
 * Records `sizes` (K too long for one dispatch on `tiling`, or a tiling with `splitK`) as a split-K GEMM
 * and its sum.
 */
export function dispatchSplitK(
  name: string,
  sizes: GemmSizes,
  gemm: GemmProgram,
  tiling: GemmTiling,
  dispatch: GemmDispatch,
): void {
  const split = splitK(sizes.K, tiling);
  const batch = sizes.batch * split.S;
  if (batch > 65535) {
    throw new ShapeError(
      name,
      `a contraction of K = ${sizes.K} in ${split.S} chunks × batch ${sizes.batch} ` +
        `exceeds 65535 GEMM batch entries`,
    );
  }
  const part = empty([batch, sizes.M, sizes.N]);
  const { hooks, bindings } = gemm;
  dispatch(
    `${name}.splitK`,
    { M: sizes.M, N: sizes.N, K: split.Kc, batch },
    { hooks: splitKHooks(hooks, sizes, split), bindings: [...bindings, write("gemmPart", part)] },
    { ...tiling, splitK: undefined }, // the chunks are not split again
  );
  runKernel({
    name: `${name}.splitK.sum`,
    bindings: [...bindings, read("gemmPart", part)],
    body: splitKSumCode(hooks, sizes, split),
    workgroups: grid1d(sizes.batch * sizes.M * sizes.N, 64),
  });
  part.dispose();
}
