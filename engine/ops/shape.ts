/**
 * Shape ops: views (`reshape`, `flatten`), `transpose2d`, `concat` along axis 0, row gathers with a
 * deterministic scatter-add backward, and `argmax`/`accuracy` along the last axis.
 */
import { gpu } from "../gpu.ts";
import { read, runKernel, write } from "../program.ts";
import { empty, fmtShape, ShapeError, shapeSize, Tensor } from "../tensor.ts";
import { record } from "../autograd.ts";
import { fillInto } from "./core.ts";
import { mean } from "./reduce.ts";
import { flatMain, grid1d, loopBudgetError, loopTrips } from "../../shaders/common.ts";

/**
 * A view of `x` with a new shape of the same size, sharing its storage (no copy). One extent may be
 * -1 and is inferred. Backward reshapes the gradient back.
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  if (x.disposed) throw new ShapeError("reshape", `input ${fmtShape(x.shape)} was disposed`);
  const target = [...shape];
  const unknown = target.indexOf(-1);
  if (unknown !== target.lastIndexOf(-1)) {
    throw new ShapeError("reshape", `more than one -1 in ${fmtShape(shape)} (input ${fmtShape(x.shape)})`);
  }
  if (unknown >= 0) {
    const known = target.reduce((p, d, k) => (k === unknown ? p : p * d), 1);
    if (known === 0 || x.size % known !== 0) {
      throw new ShapeError("reshape", `cannot infer -1 in ${fmtShape(shape)} for ${fmtShape(x.shape)}`);
    }
    target[unknown] = x.size / known;
  }
  if (target.some((d) => !Number.isInteger(d) || d < 0) || shapeSize(target) !== x.size) {
    throw new ShapeError("reshape", `cannot view ${fmtShape(x.shape)} as ${fmtShape(shape)}`);
  }
  const out = new Tensor(target, x.dtype, x.storage.retain(), x.elementOffset);
  return record(
    "reshape",
    [x],
    out,
    (g) => [new Tensor(x.shape, g.dtype, g.storage.retain(), g.elementOffset)],
  );
}

/** Merges the axes from `startDim` on into one: `[N, C, H, W]` → `[N, C·H·W]` (a view). */
export function flatten(x: Tensor, startDim = 1): Tensor {
  const rank = x.rank;
  const s = startDim < 0 ? startDim + rank : startDim;
  if (!Number.isInteger(s) || s < 0 || s >= Math.max(rank, 1)) {
    throw new ShapeError("flatten", `startDim ${startDim} out of range for ${fmtShape(x.shape)}`);
  }
  return reshape(x, [...x.shape.slice(0, s), shapeSize(x.shape.slice(s))]);
}

function transposeRaw(x: Tensor): Tensor {
  const [r, c] = x.shape;
  const out = empty([c, r], x.dtype);
  const body = `${flatMain(x.size)}
  let row = i / ${r}u;
  let col = i % ${r}u;
  out[i] = x[col * ${c}u + row];
}`;
  const type = `array<${x.dtype}>`;
  const bindings = [read("x", x, type), write("out", out, type)];
  runKernel({ name: "transpose2d", bindings, body, workgroups: grid1d(x.size) });
  return out;
}

/** The transpose of a 2-D tensor (a copy). */
export function transpose2d(x: Tensor): Tensor {
  if (x.rank !== 2) throw new ShapeError("transpose2d", `expects a 2-D tensor, got ${fmtShape(x.shape)}`);
  return record("transpose2d", [x], transposeRaw(x), (g) => [transposeRaw(g)]);
}

/**
 * Concatenates tensors along axis 0 (equal trailing shapes and dtypes). Backward copies each part's
 * rows out of the gradient.
 */
export function concat(xs: readonly Tensor[]): Tensor {
  if (xs.length === 0) throw new ShapeError("concat", "needs at least one tensor");
  const first = xs[0];
  if (first.rank === 0) throw new ShapeError("concat", "cannot concatenate scalars along axis 0");
  const tail = first.shape.slice(1);
  for (const t of xs) {
    if (t.rank !== first.rank || t.dtype !== first.dtype || t.shape.slice(1).some((d, k) => d !== tail[k])) {
      throw new ShapeError(
        "concat",
        `shapes ${xs.map((u) => `${u.dtype}${fmtShape(u.shape)}`).join(", ")} differ beyond axis 0`,
      );
    }
  }
  const rows = xs.reduce((p, t) => p + t.shape[0], 0);
  const out = empty([rows, ...tail], first.dtype);
  const g = gpu();
  let offset = 0;
  for (const t of xs) {
    if (t.size > 0) {
      const dst = out.range;
      g.copy(t.range, { buffer: dst.buffer, offset: dst.offset + offset * 4, size: t.size * 4 });
    }
    offset += t.size;
  }
  return record("concat", [...xs], out, (grad) => {
    let start = 0;
    return xs.map((t) => {
      const part = empty(t.shape, grad.dtype);
      const src = grad.range;
      if (t.size > 0) {
        g.copy({ buffer: src.buffer, offset: src.offset + start * 4, size: t.size * 4 }, part.range);
      }
      start += t.size;
      return part;
    });
  });
}

function checkIndices(op: string, x: Tensor, indices: Tensor): void {
  if (x.rank < 1) throw new ShapeError(op, `x must have at least one axis, got ${fmtShape(x.shape)}`);
  if (indices.rank !== 1 || indices.dtype === "f32") {
    throw new ShapeError(
      op,
      `indices must be a 1-D i32/u32 tensor, got ${indices.dtype}${fmtShape(indices.shape)}`,
    );
  }
}

/**
 * Rows of `x` ([N, ...]) at `indices` (i32 or u32, [B]) → [B, ...]. Indices outside [0, N) give rows
 * of zeros (no readback validates them). Backward scatter-adds the gradient rows into [N, ...];
 * repeated indices accumulate, deterministically (each source row sums its occurrences in order).
 * The backward links equal indices with O(B²) comparisons in total (cheap for batch-sized B).
 */
export function gatherRows(x: Tensor, indices: Tensor): Tensor {
  checkIndices("gatherRows", x, indices);
  const n = x.shape[0];
  const b = indices.shape[0];
  const d = n === 0 ? 0 : x.size / n;
  const out = empty([b, ...x.shape.slice(1)], x.dtype);
  if (out.size > 0) {
    const zero = x.dtype === "f32" ? "0.0" : `${x.dtype}(0)`;
    const body = `${flatMain(out.size)}
  let row = i / ${d}u;
  let col = i % ${d}u;
  let src = i32(idx[row]);
  if (src < 0 || src >= ${n}i) { out[i] = ${zero}; return; }
  out[i] = x[u32(src) * ${d}u + col];
}`;
    const bindings = [
      read("x", x, `array<${x.dtype}>`),
      read("idx", indices, `array<${indices.dtype}>`),
      write("out", out, `array<${x.dtype}>`),
    ];
    runKernel({ name: "gatherRows", bindings, body, workgroups: grid1d(out.size) });
  }
  return record("gatherRows", [x], out, (g) => [scatterAddRows(g, indices, n)]);
}

/**
 * The gradient of `gatherRows`: `[N, ...]` with row n = Σ over positions p with indices[p] = n of g[p].
 * Deterministic without atomics: a linked list of the positions of each index (`next[p]` = the next
 * position with the same index, `head[n]` = the first), then one invocation per output element walks
 * its list in order.
 */
function scatterAddRows(g: Tensor, indices: Tensor, n: number): Tensor {
  const b = indices.shape[0];
  const d = b === 0 ? 0 : g.size / b;
  const out = empty([n, ...g.shape.slice(1)]);
  if (out.size === 0) return out;
  if (b === 0) {
    fillInto(out, 0);
    return out;
  }
  // An invocation of the links kernel scans up to b − 1 other positions (two loops), and one of the gather
  // walks up to b occurrences: within the loop budget up to b = 65,534 (and O(b²) work in all).
  const budget = loopBudgetError(
    Math.max(loopTrips(b - 1) + 1, loopTrips(b)),
    `a backward over ${b} indices`,
  );
  if (budget) {
    out.dispose();
    throw new ShapeError("gatherRows", budget);
  }
  const it = indices.dtype;
  const head = empty([n], "i32");
  const next = empty([b], "i32");
  fillInto(head, -1);
  const links = `${flatMain(b)}
  let v = idx[i];
  var nxt = -1i;
  for (var q = i + 1u; q < ${b}u; q = q + 1u) {
    if (idx[q] == v) { nxt = i32(q); break; }
  }
  next[i] = nxt;
  var first = true;
  for (var q = 0u; q < i; q = q + 1u) {
    if (idx[q] == v) { first = false; break; }
  }
  let s = i32(v);
  if (first && s >= 0 && s < ${n}i) { head[u32(s)] = i32(i); }
}`;
  runKernel({
    name: "gatherRows.links",
    bindings: [
      read("idx", indices, `array<${it}>`),
      write("head", head, "array<i32>"),
      write("next", next, "array<i32>"),
    ],
    body: links,
    workgroups: grid1d(b),
  });
  const gather = `${flatMain(out.size)}
  let row = i / ${d}u;
  let col = i % ${d}u;
  var p = head[row];
  var acc = 0.0;
  while (p >= 0) {
    acc = acc + g[u32(p) * ${d}u + col];
    p = next[u32(p)];
  }
  out[i] = acc;
}`;
  runKernel({
    name: "gatherRows.backward",
    bindings: [
      read("g", g),
      read("head", head, "array<i32>"),
      read("next", next, "array<i32>"),
      write("out", out),
    ],
    body: gather,
    workgroups: grid1d(out.size),
  });
  head.dispose();
  next.dispose();
  return out;
}

/** Throws unless one invocation's loop over a row of `k` values fits the loop budget. */
function checkRowLoop(op: string, k: number): void {
  const budget = loopBudgetError(loopTrips(k - 1), `rows of ${k} values`);
  if (budget) throw new ShapeError(op, budget);
}

/** Body of a kernel over rows of `k` values of the binding `x`, with `arg` their argmax, then `body`. */
function argmaxBody(rows: number, k: number, body: string): string {
  return `${flatMain(rows)}
  let base = i * ${k}u;
  var best = x[base];
  var arg = 0u;
  for (var j = 1u; j < ${k}u; j = j + 1u) {
    let v = x[base + j];
    if (v > best) { best = v; arg = j; }
  }
${body}
}`;
}

/**
 * Index of the maximum along the last axis → i32 of shape `x.shape` without its last axis (`[rows]`
 * for a 2-D input). Ties go to the first (lowest) index, as NumPy. Not differentiable.
 */
export function argmax(x: Tensor): Tensor {
  if (x.dtype !== "f32" || x.rank < 1 || x.shape[x.rank - 1] === 0) {
    throw new ShapeError(
      "argmax",
      `expects an f32 tensor with a non-empty last axis, got ${x.dtype}${fmtShape(x.shape)}`,
    );
  }
  const k = x.shape[x.rank - 1];
  checkRowLoop("argmax", k);
  const out = empty(x.shape.slice(0, -1), "i32");
  const rows = out.size;
  if (rows === 0) return out;
  runKernel({
    name: "argmax",
    bindings: [read("x", x), write("out", out, "array<i32>")],
    body: argmaxBody(rows, k, "  out[i] = i32(arg);"),
    workgroups: grid1d(rows),
  });
  return out;
}

/**
 * Fraction of rows of `logits` ([B, K]) whose argmax (first on ties) equals the label (i32/u32, [B]):
 * an f32 tensor of shape `[]`. Not differentiable.
 */
export function accuracy(logits: Tensor, labels: Tensor): Tensor {
  if (logits.dtype !== "f32" || logits.rank !== 2 || logits.shape[1] === 0) {
    throw new ShapeError(
      "accuracy",
      `logits must be f32 [B, K], got ${logits.dtype}${fmtShape(logits.shape)}`,
    );
  }
  if (labels.rank !== 1 || labels.shape[0] !== logits.shape[0] || labels.dtype === "f32") {
    throw new ShapeError(
      "accuracy",
      `labels must be i32/u32 [${logits.shape[0]}] for logits ${fmtShape(logits.shape)}, got ${labels.dtype}${
        fmtShape(labels.shape)
      }`,
    );
  }
  const [rows, k] = logits.shape;
  checkRowLoop("accuracy", k);
  const correct = empty([rows]);
  runKernel({
    name: "accuracy",
    bindings: [read("x", logits), read("labels", labels, `array<${labels.dtype}>`), write("out", correct)],
    body: argmaxBody(rows, k, "  out[i] = select(0.0, 1.0, i32(arg) == i32(labels[i]));"),
    workgroups: grid1d(rows),
  });
  const acc = mean(correct);
  correct.dispose();
  return acc;
}
