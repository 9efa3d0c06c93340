/**
 * In-place projections of the rows of a tensor (the toy problems' constraint sets): onto the sphere
 * of radius ρ, or into the ball of radius ρ. Rows are along the last dimension.
 *
 * @module
 */
import { runKernel, write } from "../program.ts";
import { fmtShape, ShapeError, type Tensor } from "../tensor.ts";
import { grid1d, loopBudgetError, loopTrips } from "../../shaders/common.ts";
import { projectRowsBody } from "../../shaders/optim.ts";

/** Which projection: rows renormalised to the sphere, or rows outside the ball scaled back onto it. */
export type ProjectionKind = "sphere" | "ball";

function projectRows(op: string, x: Tensor, radius: number, kind: ProjectionKind): void {
  if (x.dtype !== "f32" || x.rank < 1) {
    throw new ShapeError(
      op,
      `needs an f32 tensor with rows along the last dimension, got ${x.dtype}${fmtShape(x.shape)}`,
    );
  }
  if (!(radius > 0) || !Number.isFinite(radius)) {
    throw new ShapeError(op, `radius must be positive, got ${radius}`);
  }
  const d = x.shape[x.rank - 1];
  if (x.size === 0 || d === 0) return;
  const rows = x.size / d;
  const budget = loopBudgetError(2 * loopTrips(d), `rows of ${d} values`);
  if (budget) throw new ShapeError(op, budget);
  runKernel({
    name: op,
    bindings: [write("x", x)],
    body: projectRowsBody(rows, d, radius, kind),
    workgroups: grid1d(rows, 64),
  });
}

/**
 * Renormalises every row of `x` ([N, d], or any rank: rows along the last dimension) to norm
 * `radius`, in place (recorded, no autograd). A zero row stays zero.
 */
export function projectToSphere(x: Tensor, radius: number): void {
  projectRows("projectToSphere", x, radius, "sphere");
}

/** Scales every row of `x` whose norm exceeds `radius` down to norm `radius`, in place; others are kept. */
export function projectToBall(x: Tensor, radius: number): void {
  projectRows("projectToBall", x, radius, "ball");
}

/** Applies the projection of `kind` to `x` in place. */
export function project(x: Tensor, kind: ProjectionKind, radius: number): void {
  if (kind === "sphere") projectToSphere(x, radius);
  else if (kind === "ball") projectToBall(x, radius);
  else throw new ShapeError("project", `unknown projection '${kind}'`);
}
