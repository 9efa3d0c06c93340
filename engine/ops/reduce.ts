/**
 * Reductions over axes: `sum`, `mean`, `max`, and the broadcast helpers their backwards (and those of
 * broadcasting elementwise ops) need: `sumTo` and `broadcastTo`.
 *
 * One kernel per reduction when there are enough outputs to keep the GPU busy; otherwise a two-pass
 * reduction (chunks of the reduced index reduced in parallel into partials, then the partials), which
 * also keeps float32 sums accurate: a 1M-element sum adds runs of at most a few hundred values.
 * No invocation reduces more than `MAX_LOOP_TRIPS` elements (the software adapter's loop budget), so a
 * long reduced axis is always split, however many outputs there are.
 */
import { empty, fmtShape, ShapeError, shapeSize, Tensor } from "../tensor.ts";
import { record } from "../autograd.ts";
import { fill } from "./core.ts";
import { reduceBody, type ReduceLayout, reduceLayout } from "../../shaders/reduce.ts";
import { runMap } from "./elementwise.ts";
import { type KernelBinding, read, runKernel, write } from "../program.ts";
import { f32Lit, grid1d, MAX_LOOP_TRIPS } from "../../shaders/common.ts";

/** Below this many outputs a long reduction is split into chunks (two passes). */
const TARGET_INVOCATIONS = 8192;
/** Shortest run one invocation reduces in a split reduction. */
const MIN_CHUNK = 128;
/** Longest run one invocation reduces: its loop runs `chunkLen − 1` iterations, `loopTrips` = the budget. */
const MAX_CHUNK = MAX_LOOP_TRIPS;

function checkF32(op: string, x: Tensor): void {
  if (x.dtype !== "f32") {
    throw new ShapeError(op, `expects an f32 tensor, got ${x.dtype}${fmtShape(x.shape)}`);
  }
}

/** Normalises `axes` (negative counts from the end; undefined = all) into a set, validating them. */
export function normalizeAxes(
  op: string,
  shape: readonly number[],
  axes?: number | readonly number[],
): Set<number> {
  const rank = shape.length;
  if (axes === undefined) return new Set(shape.map((_, k) => k));
  const list = typeof axes === "number" ? [axes] : axes;
  const set = new Set<number>();
  for (const a of list) {
    if (!Number.isInteger(a) || a < -rank || a >= rank) {
      throw new ShapeError(op, `axis ${a} out of range for shape ${fmtShape(shape)}`);
    }
    const k = a < 0 ? a + rank : a;
    if (set.has(k)) {
      throw new ShapeError(op, `axis ${a} repeated in [${list.join(", ")}] for shape ${fmtShape(shape)}`);
    }
    set.add(k);
  }
  return set;
}

function reducedShape(shape: readonly number[], axes: Set<number>, keepDims: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, k) => {
    if (!axes.has(k)) out.push(d);
    else if (keepDims) out.push(1);
  });
  return out;
}

interface RunOptions {
  op: "sum" | "max";
  scale?: number;
  element?: (idx: string) => string;
  /** Read bindings after `x` that `element` uses. */
  extra?: KernelBinding[];
}

/** Records the reduction of `x` with `layout` into a new tensor of `outShape` (one or more passes). */
function runReduce(
  name: string,
  x: Tensor,
  layout: ReduceLayout,
  outShape: readonly number[],
  o: RunOptions,
): Tensor {
  const { numOut, count } = layout;
  let chunks = 1;
  if (count >= 2 * MIN_CHUNK && numOut < TARGET_INVOCATIONS) {
    chunks = Math.min(Math.ceil(count / MIN_CHUNK), Math.max(1, Math.floor(TARGET_INVOCATIONS / numOut)));
  }
  chunks = Math.max(chunks, Math.ceil(count / MAX_CHUNK));
  const extra = o.extra ?? [];
  const bindings = [read("x", x), ...extra];
  if (chunks <= 1) {
    const out = empty(outShape);
    const body = reduceBody({
      layout,
      op: o.op,
      chunks: 1,
      chunkLen: count,
      scale: o.scale,
      element: o.element,
    });
    runKernel({ name, bindings: [...bindings, write("out", out)], body, workgroups: grid1d(numOut) });
    return out;
  }
  const chunkLen = Math.ceil(count / chunks);
  chunks = Math.ceil(count / chunkLen);
  const partial = empty([numOut, chunks]);
  runKernel({
    name: `${name}.partial`,
    bindings: [...bindings, write("out", partial)],
    body: reduceBody({ layout, op: o.op, chunks, chunkLen, element: o.element }),
    workgroups: grid1d(numOut * chunks),
  });
  const result = runReduce(name, partial, reduceLayout([numOut, chunks], new Set([1])), outShape, {
    op: o.op,
    scale: o.scale,
  });
  partial.dispose();
  return result;
}

/** Internal: reduces `x` over `axes` into a new tensor of shape `outShape` (no autograd). */
function reduceRaw(
  name: string,
  x: Tensor,
  axes: Set<number>,
  outShape: readonly number[],
  o: RunOptions,
): Tensor {
  const layout = reduceLayout(x.shape, axes);
  if (layout.count === 0 || x.size === 0) {
    if (o.op === "max") throw new ShapeError(name, `max over an empty axis of ${fmtShape(x.shape)}`);
    return fill(outShape, o.scale !== undefined ? NaN : 0);
  }
  return runReduce(name, x, layout, outShape, o);
}

/**
 * `g` broadcast to `shape` (NumPy rules: `g`'s shape must broadcast to `shape` unchanged). Not recorded.
 */
export function broadcastTo(g: Tensor, shape: readonly number[], scale = 1): Tensor {
  const out = empty(shape);
  const expr = scale === 1 ? "g_val" : `g_val * ${f32Lit(scale)}`;
  runMap("broadcastTo", [["g", g]], out, expr);
  return out;
}

/**
 * Sums `g` (of a broadcast shape) down to `shape`: the gradient of broadcasting `shape` up to
 * `g.shape`. Returns `g` itself when the shapes already agree (not recorded).
 */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, k) => d === shape[k])) return g;
  const rank = g.shape.length;
  const axes = new Set<number>();
  for (let k = 0; k < rank; k++) {
    const d = shape[shape.length - rank + k] ?? 1;
    if (d === 1 && g.shape[k] !== 1) axes.add(k);
  }
  return reduceRaw("sumTo", g, axes, shape, { op: "sum" });
}

function keepShape(shape: readonly number[], axes: Set<number>): number[] {
  return reducedShape(shape, axes, true);
}

/**
 * Sum over `axes` (a number, a list, or all axes when omitted; negative axes count from the end).
 * `keepDims` keeps reduced axes with extent 1. Reducing every axis without `keepDims` gives shape `[]`.
 */
export function sum(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  checkF32("sum", x);
  const set = normalizeAxes("sum", x.shape, axes);
  const out = reduceRaw("sum", x, set, reducedShape(x.shape, set, keepDims), { op: "sum" });
  return record("sum", [x], out, (g) => [broadcastView(g, keepShape(x.shape, set), x.shape, 1)]);
}

/** Mean over `axes` (as `sum`). */
export function mean(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  checkF32("mean", x);
  const set = normalizeAxes("mean", x.shape, axes);
  let count = 1;
  for (const k of set) count *= x.shape[k];
  const out = reduceRaw("mean", x, set, reducedShape(x.shape, set, keepDims), {
    op: "sum",
    scale: 1 / count,
  });
  return record("mean", [x], out, (g) => [broadcastView(g, keepShape(x.shape, set), x.shape, 1 / count)]);
}

/**
 * Maximum over `axes` (as `sum`). Backward: the gradient of each output goes to the input elements
 * equal to the maximum; ties share it equally (each of `t` tied elements gets `g / t`), which is the
 * average of the one-hot subgradients, as PyTorch's `amax`.
 */
export function max(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  checkF32("max", x);
  const set = normalizeAxes("max", x.shape, axes);
  const out = reduceRaw("max", x, set, reducedShape(x.shape, set, keepDims), { op: "max" });
  return record("max", [x], out, (g) => {
    const kshape = keepShape(x.shape, set);
    const y = reshapeLike(out, kshape);
    // Number of elements equal to the maximum per output.
    const ties = reduceRaw("max.ties", x, set, kshape, {
      op: "sum",
      element: (idx) => `select(0.0, 1.0, x[${idx}] == y[o])`,
      extra: [read("y", y)],
    });
    const gk = reshapeLike(g, kshape);
    const gx = empty(x.shape);
    const inputs: [string, Tensor][] = [["x", x], ["y", y], ["ties", ties], ["g", gk]];
    runMap("max.backward", inputs, gx, "select(0.0, g_val / ties_val, x_val == y_val)");
    ties.dispose();
    y.dispose();
    gk.dispose();
    return [gx];
  });
}

/** A view of `t` with another shape of the same size (no autograd; internal to reductions). */
function reshapeLike(t: Tensor, shape: readonly number[]): Tensor {
  if (shapeSize(shape) !== t.size) {
    throw new ShapeError("reshape", `${fmtShape(t.shape)} to ${fmtShape(shape)}`);
  }
  return new Tensor(shape, t.dtype, t.storage.retain(), t.elementOffset);
}

/** `scale · g` (viewed as `viewShape`) broadcast to `shape`. */
function broadcastView(
  g: Tensor,
  viewShape: readonly number[],
  shape: readonly number[],
  scale: number,
): Tensor {
  const view = reshapeLike(g, viewShape);
  const out = broadcastTo(view, shape, scale);
  view.dispose();
  return out;
}
