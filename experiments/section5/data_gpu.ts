/**
 * Moved to `train/data_gpu.ts` (the training room); re-exported here for the experiments that import it.
 * @module
 */
export * from "../../train/data_gpu.ts";
