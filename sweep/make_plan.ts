/**
 * `deno task sweep plan --grid <section5|random-labels|FILE.json> --out DIR [--scale paper|reduced|tiny]
 * [--seeds 0,1,…]`: expands a grid into cells and writes `DIR/cells/<id>/cell.json` for each, then
 * `DIR/plan.json` (atomically, last). Planning the same grid into the same folder again changes
 * nothing; a different grid there is refused.
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { writeJsonAtomic } from "../train/atomic.ts";
import { builtinGrid, expandGrid, GridError, type GridSpec, readGridFile } from "./grids.ts";
import {
  PLAN_FORMAT,
  PlanError,
  readPlan,
  type Scale,
  SWEEP_FILES,
  type SweepPlan,
  writePlan,
} from "./plan.ts";
import { UsageError } from "./errors.ts";
import { PROJECT_ROOT } from "./runtime.ts";

/** Options of the plan verb. */
export interface PlanOptions {
  /** "section5", "random-labels" or a grid file. */
  grid: string;
  /** The plan folder. */
  out: string;
  /** Scale (default: the grid file's, else "reduced"). */
  scale?: Scale;
  /** Seeds of the built-in grids (default [0]). */
  seeds?: number[];
}

/** Parses the plan verb's arguments. */
export function parsePlanArgs(args: string[]): PlanOptions {
  const { values } = parseArgs({
    args,
    options: {
      grid: { type: "string" },
      out: { type: "string" },
      scale: { type: "string" },
      seeds: { type: "string" },
    },
    strict: true,
  });
  if (!values.grid) throw new UsageError("plan: --grid section5|random-labels|FILE.json is required");
  if (!values.out) throw new UsageError("plan: --out DIR is required");
  if (values.scale !== undefined && !["paper", "reduced", "tiny"].includes(values.scale)) {
    throw new UsageError(`plan: --scale ${values.scale} is not one of paper, reduced, tiny`);
  }
  let seeds: number[] | undefined;
  if (values.seeds !== undefined) {
    seeds = values.seeds.split(",").map((s) => Number(s.trim()));
    if (seeds.some((s) => !Number.isInteger(s) || s < 0)) {
      throw new UsageError(`plan: --seeds ${values.seeds} must be integers ≥ 0, comma separated`);
    }
  }
  return { grid: values.grid, out: values.out, scale: values.scale as Scale | undefined, seeds };
}

/** The project's commit, read from .git without running git ("unknown" when there is none). */
export function projectVersion(): string {
  const root = PROJECT_ROOT;
  try {
    const head = Deno.readTextFileSync(join(root, ".git", "HEAD")).trim();
    if (!head.startsWith("ref: ")) return head;
    const ref = head.slice(5);
    try {
      return Deno.readTextFileSync(join(root, ".git", ref)).trim();
    } catch {
      const packed = Deno.readTextFileSync(join(root, ".git", "packed-refs"));
      const line = packed.split("\n").find((l) => l.endsWith(` ${ref}`));
      return line ? line.split(" ")[0] : "unknown";
    }
  } catch {
    return "unknown";
  }
}

/** Builds the plan of `options` (no files written). */
export async function buildPlan(options: PlanOptions): Promise<SweepPlan> {
  let spec: GridSpec;
  if (options.grid === "section5" || options.grid === "random-labels") {
    spec = builtinGrid(options.grid, options.scale ?? "reduced", options.seeds ?? [0]);
  } else {
    spec = await readGridFile(options.grid);
    if (options.seeds) spec = { ...spec, axes: { ...spec.axes, seed: options.seeds } };
  }
  const scale = options.scale ?? spec.scale ?? "reduced";
  const cells = expandGrid(spec, scale, options.grid);
  if (cells.length === 0) throw new GridError(`${options.grid}: the grid has no cells`);
  return {
    format: PLAN_FORMAT,
    grid: options.grid,
    scale,
    createdAt: new Date().toISOString(),
    versions: { project: projectVersion(), deno: Deno.version.deno },
    cells,
  };
}

/**
 * Plans into `options.out`: cell folders with their cell.json, then plan.json. Returns the plan and
 * whether it was already there (the same cells: nothing is written).
 */
export async function makePlan(options: PlanOptions): Promise<{ plan: SweepPlan; existed: boolean }> {
  const plan = await buildPlan(options);
  const path = join(options.out, SWEEP_FILES.plan);
  let old: SweepPlan | null = null;
  try {
    old = await readPlan(options.out);
  } catch (e) {
    if (!(e instanceof PlanError && e.cause instanceof Deno.errors.NotFound)) throw e;
  }
  if (old) {
    const same = old.cells.length === plan.cells.length &&
      old.cells.every((c, i) => c.id === plan.cells[i].id);
    if (!same) {
      throw new PlanError(
        path,
        `already holds a different plan (${old.grid}, ${old.scale}, ${old.cells.length} cells); choose another --out`,
      );
    }
    return { plan: old, existed: true };
  }
  try {
    await Deno.mkdir(join(options.out, "cells"), { recursive: true });
  } catch (e) {
    throw new PlanError(options.out, `cannot create the plan folder: ${(e as Error).message}`, { cause: e });
  }
  for (const cell of plan.cells) {
    const dir = join(options.out, cell.dir);
    await Deno.mkdir(dir, { recursive: true });
    await writeJsonAtomic(join(dir, SWEEP_FILES.cell), cell);
  }
  await writePlan(options.out, plan);
  return { plan, existed: false };
}

/** The plan verb: returns the exit code. */
export async function planMain(args: string[]): Promise<number> {
  const options = parsePlanArgs(args);
  const { plan, existed } = await makePlan(options);
  const kinds = new Set(plan.cells.map((c) => c.kind));
  console.log(
    existed
      ? `${
        join(options.out, SWEEP_FILES.plan)
      }: already planned (${plan.cells.length} cells); nothing changed`
      : `planned ${plan.cells.length} ${[...kinds].join("/")} cells (${plan.grid}, scale ${plan.scale}) → ${
        join(options.out, SWEEP_FILES.plan)
      }`,
  );
  return 0;
}
