/**
 * Losses and the sphere normalisation: `normalizeToSphere`, `crossEntropy`, `supConLoss`.
 *
 * Each forward records one fused row kernel (plus a tiny reduction to the scalar) and its backward
 * right beside it. Losses return scalars of shape `[]`.
 *
 * @module
 */
import { read, runKernel, write } from "../program.ts";
import { empty, fmtShape, ShapeError, type Tensor } from "../tensor.ts";
import { noGrad, record } from "../autograd.ts";
import { matmul } from "./matmul.ts";
import { grid1d, loopBudgetError, loopTrips } from "../../shaders/common.ts";
import {
  ceBackwardBody,
  ceRowsBody,
  ROW_WG,
  sphereBackwardBody,
  sphereForwardBody,
  sumBody,
  supConBackwardBody,
  supConRowsBody,
} from "../../shaders/loss.ts";

/** Norms below this are clamped in `normalizeToSphere` (a zero row maps to the zero vector, not NaN). */
export const SPHERE_EPS = 1e-12;

function check2d(op: string, t: Tensor, what: string, dtype = "f32"): void {
  if (t.rank !== 2 || t.dtype !== dtype) {
    throw new ShapeError(
      op,
      `${what} must be a ${dtype} matrix [rows, cols], got ${t.dtype}${fmtShape(t.shape)}`,
    );
  }
}

function checkLabels(op: string, labels: Tensor, rows: number, x: Tensor): void {
  if (labels.dtype !== "i32" || labels.rank !== 1 || labels.shape[0] !== rows) {
    throw new ShapeError(
      op,
      `labels must be i32 [${rows}] for input ${fmtShape(x.shape)}, got ${labels.dtype}${
        fmtShape(labels.shape)
      }`,
    );
  }
}

/** Throws a `ShapeError` naming `op` when a kernel's loops would run `trips` iterations (see `MAX_LOOP_TRIPS`). */
function checkLoops(op: string, trips: number, what: string): void {
  const error = loopBudgetError(trips, what);
  if (error) throw new ShapeError(op, error);
}

/** `scale · Σ v` as a new scalar tensor `[]` (one workgroup: 64 strided sums, then a 6-level tree). */
function sumScalar(op: string, v: Tensor, scale: number): Tensor {
  checkLoops(op, loopTrips(Math.ceil(v.size / 64)) + loopTrips(6), `a sum over ${v.size} rows`);
  const out = empty([]);
  runKernel({
    name: "loss.sum",
    bindings: [read("v", v), write("out", out)],
    body: sumBody(v.size, scale),
    workgroups: [1, 1, 1],
  });
  return out;
}

/**
 * Projects each row of `u` [B, d] onto the sphere of radius `radius`: `z = ρ·u/‖u‖`.
 *
 * The norm is clamped below at {@link SPHERE_EPS} (1e-12), so a zero row gives a zero output and a
 * finite (large) gradient instead of NaN. Backward: `du = (ρ/‖u‖)(dz − ẑ⟨ẑ, dz⟩)`, `ẑ = u/‖u‖`.
 */
export function normalizeToSphere(u: Tensor, radius: number): Tensor {
  check2d("normalizeToSphere", u, "u");
  if (!(radius > 0) || !Number.isFinite(radius)) {
    throw new ShapeError("normalizeToSphere", `radius must be positive and finite, got ${radius}`);
  }
  const [rows, d] = u.shape;
  checkLoops("normalizeToSphere", 2 * loopTrips(d), `rows of ${d} values`);
  const z = empty(u.shape);
  const norms = empty([rows]);
  if (u.size > 0) {
    runKernel({
      name: "normalizeToSphere",
      bindings: [read("u", u), write("z", z), write("norms", norms)],
      body: sphereForwardBody(rows, d, radius, SPHERE_EPS),
      workgroups: grid1d(rows, ROW_WG),
    });
  }
  if (
    !record("normalizeToSphere", [u], z, (dz) => {
      const du = empty(u.shape);
      if (u.size > 0) {
        runKernel({
          name: "normalizeToSphere.backward",
          bindings: [read("u", u), read("norms", norms), read("dz", dz), write("du", du)],
          body: sphereBackwardBody(rows, d, radius),
          workgroups: grid1d(rows, ROW_WG),
        });
      }
      norms.dispose();
      return [du];
    }).node
  ) {
    norms.dispose();
  }
  return z;
}

/** Options of {@link crossEntropy}. */
export interface CrossEntropyOptions {
  /** `'mean'` (default) over the rows, or `'sum'`. */
  reduction?: "mean" | "sum";
}

/**
 * Cross-entropy of `logits` [B, K] against integer `labels` i32 [B]: the mean (or sum) over rows of
 * `−log softmax(logits_r)[labels_r]`, a scalar `[]`, computed with a max-subtracted log-sum-exp.
 *
 * Labels stay on the GPU and are not validated on the host: a label outside `[0, K)` makes its row's
 * loss NaN (and so the result and that row's gradient), never a silently wrong number.
 * Backward: `(softmax − onehot)·g/B` (`·g` for `'sum'`) in one kernel.
 */
export function crossEntropy(logits: Tensor, labels: Tensor, options: CrossEntropyOptions = {}): Tensor {
  check2d("crossEntropy", logits, "logits");
  const [rows, k] = logits.shape;
  checkLabels("crossEntropy", labels, rows, logits);
  if (rows === 0 || k === 0) throw new ShapeError("crossEntropy", `empty logits ${fmtShape(logits.shape)}`);
  const reduction = options.reduction ?? "mean";
  const scale = reduction === "mean" ? 1 / rows : 1;
  checkLoops("crossEntropy", loopTrips(k - 1) + loopTrips(k), `rows of ${k} classes`);
  const loss = empty([rows]);
  const lse = empty([rows]);
  runKernel({
    name: "crossEntropy",
    bindings: [
      read("x", logits),
      read("labels", labels, "array<i32>"),
      write("loss", loss),
      write("lse", lse),
    ],
    body: ceRowsBody(rows, k),
    workgroups: grid1d(rows, ROW_WG),
  });
  const out = sumScalar("crossEntropy", loss, scale);
  loss.dispose();
  if (
    !record("crossEntropy", [logits, labels], out, (g) => {
      const dx = empty(logits.shape);
      runKernel({
        name: "crossEntropy.backward",
        bindings: [
          read("x", logits),
          read("labels", labels, "array<i32>"),
          read("lse", lse),
          read("g", g),
          write("dx", dx),
        ],
        body: ceBackwardBody(rows, k, scale),
        workgroups: grid1d(rows * k),
      });
      lse.dispose();
      return [dx, null];
    }).node
  ) {
    lse.dispose();
  }
  return out;
}

/** The Gram matrix `z·zᵀ` [b, b] of `z` [b, d] (the shared GEMM; no autograd node of its own). */
function gram(z: Tensor): Tensor {
  return noGrad(() => matmul(z, z, { transB: true }));
}

/**
 * The per-anchor terms of {@link supConLoss} as a tensor [b] (no autograd): anchor i's
 * `LSE_{k≠i}⟨z_i, z_k⟩ − mean_{j∈pos(i)}⟨z_i, z_j⟩`, 0 for anchors without positives.
 */
export function supConAnchorLosses(z: Tensor, labels: Tensor): Tensor {
  const { G, loss, stats } = supConRows("supConAnchorLosses", z, labels);
  G.dispose();
  stats.dispose();
  return loss;
}

/**
 * Checks z [b, d] and labels, then records the Gram matrix G and the row kernel: per-anchor losses [b] and
 * row statistics [b, 2] (what the backward reuses).
 */
function supConRows(op: string, z: Tensor, labels: Tensor): { G: Tensor; loss: Tensor; stats: Tensor } {
  check2d(op, z, "z");
  const [b] = z.shape;
  checkLabels(op, labels, b, z);
  if (b === 0 || z.shape[1] === 0) throw new ShapeError(op, `empty batch ${fmtShape(z.shape)}`);
  checkLoops(op, 2 * loopTrips(b), `a batch of ${b} (Gram rows of ${b})`);
  const G = gram(z);
  const loss = empty([b]);
  const stats = empty([b, 2]);
  runKernel({
    name: "supConLoss",
    bindings: [
      read("G", G),
      read("labels", labels, "array<i32>"),
      write("loss", loss),
      write("stats", stats, "array<vec2<f32>>"),
    ],
    body: supConRowsBody(b),
    workgroups: grid1d(b, ROW_WG),
  });
  return { G, loss, stats };
}

/**
 * Supervised contrastive loss of one batch (Definition 2, Eq. 6), a scalar `[]`: the SUM over the
 * b anchor occurrences (rows of `z` [b, d], labels i32 [b]) of
 * `−(1/P_i) Σ_{j∈pos(i)} (⟨z_i, z_j⟩ − log Σ_{k≠i} exp⟨z_i, z_k⟩)`,
 * where rows are occurrences: the positives of row i are all other rows j ≠ i with the same label
 * (a duplicated index is a positive of its copy), and anchors without positives contribute 0.
 * The denominator is a masked, max-subtracted log-sum-exp over k ≠ i. No temperature: pass points on
 * the sphere of radius ρ = 1/√τ (see `normalizeToSphere`).
 *
 * Memory: the Gram matrix and, in the backward, one b×b gradient (b = 4096: 64 MiB each).
 * Backward: `S = dG + dGᵀ` in one elementwise kernel, then `dz = S·z`.
 */
export function supConLoss(z: Tensor, labels: Tensor): Tensor {
  const [b] = z.shape;
  const { G, loss, stats } = supConRows("supConLoss", z, labels);
  const out = sumScalar("supConLoss", loss, 1);
  loss.dispose();
  if (
    !record("supConLoss", [z, labels], out, (g) => {
      const S = empty([b, b]);
      runKernel({
        name: "supConLoss.backward",
        bindings: [
          read("G", G),
          read("labels", labels, "array<i32>"),
          read("stats", stats, "array<vec2<f32>>"),
          read("gOut", g),
          write("S", S),
        ],
        body: supConBackwardBody(b),
        workgroups: grid1d(b * b),
      });
      G.dispose();
      stats.dispose();
      const dz = noGrad(() => matmul(S, z));
      S.dispose();
      return [dz, null];
    }).node
  ) {
    G.dispose();
    stats.dispose();
  }
  return out;
}
