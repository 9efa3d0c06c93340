/**
 * Moved to `train/csv.ts` (the training room); re-exported here for the experiments that import it.
 * @module
 */
export * from "../../train/csv.ts";
