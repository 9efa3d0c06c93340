/**
 * Moved to `train/evaluate.ts` (the training room); re-exported here for the experiments that import it.
 * @module
 */
export * from "../../train/evaluate.ts";
