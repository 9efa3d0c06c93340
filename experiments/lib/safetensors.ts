/**
 * Moved to `train/safetensors.ts` (the training room); re-exported here for the experiments that import it.
 * @module
 */
export * from "../../train/safetensors.ts";
