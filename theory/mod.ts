/**
 * Pure-CPU float64 theory of "Dissecting Supervised Contrastive Learning" (ICML 2021):
 * regular simplices, the cross-entropy bounds (Theorem 1, Corollaries 1–2), the supervised
 * contrastive bound (Theorem 2), the γ geometry statistic (Eq. 7), and brute-force float64
 * reference losses. No GPU and no permissions needed.
 *
 * @module
 */

export { regularSimplex, simplexInnerProduct, type SimplexInvariants, simplexInvariants } from "./simplex.ts";
export {
  ceBoundCorollary1,
  ceBoundCorollary2,
  ceBoundTheorem1,
  ceCorollary2Objective,
  type CeCorollary2Result,
  ceLossF64,
  lambdaFromWeightDecay,
  log1pKm1ExpNeg,
  rW,
} from "./ce_bound.ts";
export {
  bigLog,
  logMultichoose,
  multichoose,
  scAnchorValueAtSimplex,
  scBound,
  scBoundIidExpectation,
  type ScBoundParams,
  type ScBoundResult,
  type ScBoundTerm,
  scLossAtSimplex,
  validateScParams,
} from "./sc_bound.ts";
export { angleBetween, classMeans, gamma, gammaSimplex, gammaToClassMeans, pairwiseGamma } from "./gamma.ts";
export {
  forEachMultiset,
  scLossAllMultisetsF64,
  scLossBatchF64,
  scLossOccurrencesF64,
  type ScLossOccurrencesResult,
} from "./sc_loss_ref.ts";
export { type FlatMatrix, type MatrixLike, toRows } from "./matrix.ts";
