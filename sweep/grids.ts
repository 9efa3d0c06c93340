/**
 * Grids: the paper's Section 5 and random-label grids at three scales, and grids from a JSON file,
 * expanded into the flat trainer configurations of their cells.
 *
 * A grid file holds `{ "kind": "section5" | "random-labels", "scale"?: "paper" | "reduced" | "tiny",
 * "base"?: {...}, "axes"?: {...}, "blocks"?: [{ "base"?: {...}, "axes": {...} }, …] }`. `base` and
 * `axes` use the keys of `deno task train`'s options in camelCase (experiments/section5/config.ts: loss,
 * dataset, augment, model, corruption, seed, width, iterations, …); each axis is a list of values and
 * the cells are the product of the axes, in the order written (the last axis varies fastest). With
 * `blocks`, each block is expanded on its own (its base over the file's base) and the cells are
 * concatenated. A random-labels grid's `iterations` is the cap of the time to fit, `evalEvery` the
 * evaluation interval, `corruption` the label fraction; it trains without augmentation.
 * @module
 */
import {
  defaultTrainConfig,
  type LossName,
  TRAIN_OPTIONS,
  type TrainConfig,
  validateTrainConfig,
} from "../experiments/section5/config.ts";
import { type RandomLabelsConfig, trainConfigFor } from "../experiments/random_labels.ts";
import { canonicalJson, cellId, type CellKind, type CellLabels, type Scale, type SweepCell } from "./plan.ts";

/** A grid: a kind, base settings and axes (see the module doc). */
export interface GridSpec {
  /** What each cell runs. */
  kind: CellKind;
  /** The sizes the base starts from (overridden by `plan --scale`). */
  scale?: Scale;
  /** Settings of every cell. */
  base?: Partial<TrainConfig>;
  /** Lists of values; cells are their product. */
  axes?: Partial<Record<keyof TrainConfig, readonly unknown[]>>;
  /** Sub-grids expanded one after the other. */
  blocks?: { base?: Partial<TrainConfig>; axes?: Partial<Record<keyof TrainConfig, readonly unknown[]>> }[];
}

/** A grid file or its contents is not usable; the message names the file and the key. */
export class GridError extends Error {
  /** The error with `message`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "GridError";
  }
}

/** The three losses of the paper. */
export const LOSSES: readonly LossName[] = ["ce", "ce-fix", "sc"];
/** The 11 corruption fractions of Figs. 2 and 8. */
export const FRACTIONS: readonly number[] = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];

/** The tiny scale's synthetic data and network: a cell runs in seconds on a software adapter. */
const TINY_DATA: Partial<TrainConfig> = {
  dataset: "synthetic",
  syntheticSize: 8,
  syntheticN: 64,
  syntheticTestN: 32,
  syntheticClasses: 4,
  width: 0.0625,
  batch: 16,
  evalBatch: 32,
  logEvery: 4,
};

/** Sizes of a Section 5 cell at each scale (over `deno task train`'s defaults, which are the paper's). */
export const SECTION5_SCALES: Record<Scale, Partial<TrainConfig>> = {
  paper: { iterations: 100000, batch: 256, width: 1, probeIterations: 5000, checkpointEvery: 5000 },
  reduced: {
    iterations: 5000,
    batch: 128,
    width: 0.25,
    probeIterations: 1000,
    checkpointEvery: 500,
    logEvery: 50,
  },
  tiny: { ...TINY_DATA, iterations: 24, probeIterations: 8, checkpointEvery: 8 },
};

/** Sizes of a random-labels cell at each scale (the paper: 100k cap, an evaluation every 500). */
export const RANDOM_LABELS_SCALES: Record<Scale, Partial<TrainConfig>> = {
  paper: {
    iterations: 100000,
    evalEvery: 500,
    probeIterations: 1000,
    testSubset: 1000,
    batch: 256,
    width: 1,
    checkpointEvery: 5000,
  },
  reduced: {
    iterations: 20000,
    evalEvery: 250,
    probeIterations: 200,
    testSubset: 1000,
    trainSubset: 5000,
    batch: 128,
    width: 0.25,
    checkpointEvery: 1000,
  },
  tiny: {
    ...TINY_DATA,
    iterations: 24,
    evalEvery: 8,
    probeIterations: 8,
    testSubset: 32,
    checkpointEvery: 8,
  },
};

/** The paper's datasets at a scale (the tiny scale stands in synthetic data). */
function datasets(scale: Scale): string[] {
  return scale === "tiny" ? ["synthetic"] : ["cifar10", "cifar100"];
}

/**
 * The built-in grids. Section 5 (Fig. 7): 3 losses × 2 datasets × augmentation on/off with ResNet-18,
 * plus the pre-activation column (3 losses × 2 datasets, with augmentation) that tests the paper's
 * conjecture on class-mean separation. Random labels (Figs. 2/8): 3 losses × 11 fractions × datasets ×
 * seeds.
 */
export function builtinGrid(name: "section5" | "random-labels", scale: Scale, seeds: number[]): GridSpec {
  if (name === "section5") {
    return {
      kind: "section5",
      scale,
      blocks: [
        {
          base: { model: "resnet18" },
          axes: { loss: LOSSES, dataset: datasets(scale), augment: [true, false], seed: seeds },
        },
        {
          base: { model: "preact-resnet18", augment: true },
          axes: { loss: LOSSES, dataset: datasets(scale), seed: seeds },
        },
      ],
    };
  }
  return {
    kind: "random-labels",
    scale,
    axes: { loss: LOSSES, dataset: datasets(scale), corruption: FRACTIONS, seed: seeds },
  };
}

/** Reads a grid file; throws {@link GridError} naming it. */
export async function readGridFile(path: string): Promise<GridSpec> {
  let spec: GridSpec;
  try {
    spec = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new GridError(`${path}: ${(e as Error).message.split("\n")[0]}`, { cause: e });
  }
  if (!spec || (spec.kind !== "section5" && spec.kind !== "random-labels")) {
    throw new GridError(`${path}: "kind" must be "section5" or "random-labels"`);
  }
  if (spec.scale !== undefined && !["paper", "reduced", "tiny"].includes(spec.scale)) {
    throw new GridError(`${path}: "scale" must be "paper", "reduced" or "tiny"`);
  }
  return spec;
}

const KNOWN_KEYS = new Set([...Object.keys(TRAIN_OPTIONS), "seed"]);

function checkKeys(where: string, obj: object | undefined): void {
  for (const k of Object.keys(obj ?? {})) {
    if (!KNOWN_KEYS.has(k)) throw new GridError(`${where}: unknown setting "${k}"`);
  }
}

function product(axes: [string, readonly unknown[]][]): Record<string, unknown>[] {
  let out: Record<string, unknown>[] = [{}];
  for (const [k, values] of axes) out = out.flatMap((o) => values.map((v) => ({ ...o, [k]: v })));
  return out;
}

/**
 * The random-labels sweep's own configuration of a cell's trainer configuration (what
 * experiments/random_labels.ts `fitRun` takes).
 */
export function randomLabelsConfigOf(c: TrainConfig): RandomLabelsConfig {
  return {
    ps: [c.corruption],
    losses: [c.loss],
    iterations: c.iterations,
    evalEvery: c.evalEvery,
    probeIterations: c.probeIterations,
    dataset: c.dataset,
    data: c.data,
    model: c.model,
    width: c.width,
    trainSubset: c.trainSubset,
    testSubset: c.testSubset,
    batch: c.batch,
    lr: c.lr,
    corruptionMode: c.corruptionMode,
    syntheticN: c.syntheticN,
    syntheticTestN: c.syntheticTestN,
    syntheticClasses: c.syntheticClasses,
    syntheticSize: c.syntheticSize,
    evalBatch: c.evalBatch,
    checkpointEvery: c.checkpointEvery,
    seed: c.seed,
    out: c.out,
    json: false,
    quiet: c.quiet,
  } as RandomLabelsConfig;
}

/**
 * A random-labels cell's configuration as `fitRun` will train it; throws when a setting of the grid
 * is one the random-labels run does not take (it would be silently dropped).
 */
export function randomLabelsTrainConfig(c: TrainConfig, where: string): TrainConfig {
  if (c.evalEvery < 1) throw new GridError(`${where}: a random-labels cell needs evalEvery ≥ 1`);
  const rl = trainConfigFor(randomLabelsConfigOf(c), c.loss, c.corruption, c.out);
  const a = JSON.parse(canonicalJson({ ...c, augment: false, logEvery: rl.logEvery }));
  const b = JSON.parse(canonicalJson(rl));
  for (const k of Object.keys(a)) {
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) {
      throw new GridError(
        `${where}: "${k}" ${JSON.stringify(a[k])} cannot be set in a random-labels grid (the run uses ${
          JSON.stringify(b[k])
        })`,
      );
    }
  }
  return rl;
}

/** The cells of a grid at `scale` (0-based indices, ids, folders `cells/<id>`). */
export function expandGrid(spec: GridSpec, scale: Scale, where: string): SweepCell[] {
  const sizes = (spec.kind === "section5" ? SECTION5_SCALES : RANDOM_LABELS_SCALES)[scale];
  checkKeys(`${where} base`, spec.base);
  checkKeys(`${where} axes`, spec.axes);
  const blocks = spec.blocks?.length ? spec.blocks : [{ base: {}, axes: {} }];
  const cells: SweepCell[] = [];
  const seen = new Map<string, number>();
  blocks.forEach((block, bi) => {
    checkKeys(`${where} blocks[${bi}].base`, block.base);
    checkKeys(`${where} blocks[${bi}].axes`, block.axes);
    const axes = Object.entries({ ...spec.axes, ...block.axes }) as [string, readonly unknown[]][];
    for (const [k, v] of axes) {
      if (!Array.isArray(v) || v.length === 0) {
        throw new GridError(`${where}: axis "${k}" must be a non-empty list`);
      }
    }
    for (const point of product(axes)) {
      const index = cells.length;
      const cellWhere = `${where} cell ${index} (${canonicalJson(point)})`;
      let config = {
        ...defaultTrainConfig,
        quiet: true,
        ...sizes,
        ...spec.base,
        ...block.base,
        ...point,
        resume: false,
        json: false,
        out: "cells/new",
      } as TrainConfig;
      try {
        if (spec.kind === "random-labels") config = randomLabelsTrainConfig(config, cellWhere);
      } catch (e) {
        if (e instanceof GridError) throw e;
        throw new GridError(`${cellWhere}: ${(e as Error).message}`, { cause: e });
      }
      config.quiet = true;
      const id = cellId(spec.kind, config);
      const dir = `cells/${id}`;
      config.out = dir;
      try {
        validateTrainConfig(config);
      } catch (e) {
        throw new GridError(`${cellWhere}: ${(e as Error).message}`, { cause: e });
      }
      const twin = seen.get(id);
      if (twin !== undefined) {
        throw new GridError(`${cellWhere}: the same configuration as cell ${twin} (id ${id})`);
      }
      seen.set(id, index);
      const labels: CellLabels = {
        loss: config.loss,
        dataset: config.dataset,
        augment: config.augment,
        preact: config.model === "preact-resnet18",
        ...(spec.kind === "random-labels" ? { fraction: config.corruption } : {}),
        seed: config.seed,
      };
      cells.push({ index, id, dir, kind: spec.kind, labels, config });
    }
  });
  return cells;
}
