/**
 * The supervised contrastive loss (Definition 2, Eq. 6, multiset semantics, sum over anchors) over a
 * table of batches given as count vectors, on the GPU: the exact mean over all C(N+b−1, b) multisets
 * (Theorem 2's L_SC / |𝔅|, Fig. 6), its gradient, every batch loss (the Fig. 6 histogram), a fused
 * projected-gradient trainer for the full-batch toy, and an in-kernel multi-step descent on single
 * batches (the Fig. 5 per-batch minimisers and the stochastic variant of Fig. 6).
 *
 * Kernel sources: `shaders/sc_multiset.ts`.
 *
 * @module
 */
import { gpu } from "../gpu.ts";
import { read, runKernel, uniform, write } from "../program.ts";
import { empty, fmtShape, ShapeError, type Tensor, tensor, untrack } from "../tensor.ts";
import { record } from "../autograd.ts";
import { fill } from "./core.ts";
import { grid1d, loopBudgetError, MAX_LOOP_TRIPS } from "../../shaders/common.ts";
import {
  batchLossesBody,
  type CountsLayout,
  countsLayout,
  gramBackwardBody,
  gramExpBody,
  gramExpTrips,
  meanLossBody,
  multisetPartialsBody,
  reduceRowsBody,
  SCM_WG,
  sphereDescentBody,
  sphereDescentTrips,
  sphereStepBody,
  sphereStepTrips,
} from "../../shaders/sc_multiset.ts";

/** Multisets handled by one invocation of the partial-sum kernel (before the fixed-order reduction). */
export const MULTISETS_PER_CHUNK = 32;
/** Fan-in of each level of the reduction over chunks. */
export const REDUCE_FAN_IN = 32;

/**
 * A table of multisets (batches) over N points, as packed count vectors. The host copy is kept (for
 * labelling and CPU references); the GPU copy is uploaded on first use.
 */
export class MultisetTable {
  /** Number of points. */
  readonly N: number;
  /** Batch size b (Σ of every count vector). */
  readonly b: number;
  /** Number of multisets. */
  readonly count: number;
  /** Packing of the count vectors. */
  readonly layout: CountsLayout;
  /** Packed counts, `layout.words` u32 per multiset. */
  readonly packed: Uint32Array;
  #tensor: Tensor | null = null;

  private constructor(N: number, b: number, count: number, layout: CountsLayout, packed: Uint32Array) {
    this.N = N;
    this.b = b;
    this.count = count;
    this.layout = layout;
    this.packed = packed;
  }

  /**
   * All C(N+b−1, b) multisets of size b from [N], in the order of `forEachMultiset` (non-decreasing
   * index arrays in lexicographic order).
   */
  static all(N: number, b: number): MultisetTable {
    if (!Number.isInteger(N) || N < 1 || !Number.isInteger(b) || b < 1) {
      throw new RangeError(`MultisetTable.all: need integers N >= 1, b >= 1 (got N=${N}, b=${b})`);
    }
    let count = 1;
    for (let i = 1; i <= b; i++) count = (count * (N - 1 + i)) / i;
    count = Math.round(count);
    if (count > 50_000_000) throw new RangeError(`MultisetTable.all: ${count} multisets is too many`);
    const layout = countsLayout(N, b);
    const packed = new Uint32Array(count * layout.words);
    const idx = new Int32Array(b);
    let t = 0;
    while (true) {
      const base = t * layout.words;
      for (let u = 0; u < b; u++) {
        const k = idx[u];
        packed[base + Math.floor(k / layout.perWord)] += 1 << ((k % layout.perWord) * layout.bits);
      }
      t++;
      let p = b - 1;
      while (p >= 0 && idx[p] === N - 1) p--;
      if (p < 0) break;
      const v = idx[p] + 1;
      for (let u = p; u < b; u++) idx[u] = v;
    }
    return new MultisetTable(N, b, count, layout, packed);
  }

  /** A table from explicit count vectors (each of length N, non-negative integers, equal sums). */
  static fromCounts(rows: readonly ArrayLike<number>[], N: number): MultisetTable {
    if (rows.length === 0) throw new RangeError("MultisetTable.fromCounts: no rows");
    let b = -1, maxCount = 0;
    for (const r of rows) {
      if (r.length !== N) throw new RangeError(`MultisetTable.fromCounts: row of length ${r.length}, N=${N}`);
      let s = 0;
      for (let k = 0; k < N; k++) {
        if (!Number.isInteger(r[k]) || r[k] < 0) {
          throw new RangeError(`MultisetTable.fromCounts: bad count ${r[k]}`);
        }
        s += r[k];
        maxCount = Math.max(maxCount, r[k]);
      }
      if (b >= 0 && s !== b) {
        throw new RangeError(`MultisetTable.fromCounts: batch sizes ${b} and ${s} differ`);
      }
      b = s;
    }
    if (maxCount >= 65536) throw new RangeError(`MultisetTable.fromCounts: count ${maxCount} too large`);
    const layout = countsLayout(N, maxCount);
    const packed = new Uint32Array(rows.length * layout.words);
    rows.forEach((r, t) => {
      for (let k = 0; k < N; k++) {
        const w = t * layout.words + Math.floor(k / layout.perWord);
        packed[w] = (packed[w] + r[k] * 2 ** ((k % layout.perWord) * layout.bits)) >>> 0;
      }
    });
    return new MultisetTable(N, b, rows.length, layout, packed);
  }

  /** The count vector of multiset `t`. */
  counts(t: number): Int32Array {
    const { words, perWord, bits } = this.layout;
    const out = new Int32Array(this.N);
    const mask = (1 << bits) - 1;
    for (let k = 0; k < this.N; k++) {
      out[k] = (this.packed[t * words + Math.floor(k / perWord)] >>> ((k % perWord) * bits)) & mask;
    }
    return out;
  }

  /** The indices of multiset `t` as a non-decreasing array of length b (repeats for counts > 1). */
  indices(t: number): Int32Array {
    const c = this.counts(t);
    const out = new Int32Array(this.b);
    let u = 0;
    for (let k = 0; k < this.N; k++) for (let r = 0; r < c[k]; r++) out[u++] = k;
    return out;
  }

  /** The packed table on the GPU (u32 [count, words]), uploaded once. */
  get tensor(): Tensor {
    if (!this.#tensor || this.#tensor.disposed) {
      // The table is long-lived: keep it out of any open scope (freed by dispose()).
      this.#tensor = untrack(tensor(this.packed, [this.count, this.layout.words], { dtype: "u32" }));
    }
    return this.#tensor;
  }

  /** Frees the GPU copy. */
  dispose(): void {
    this.#tensor?.dispose();
    this.#tensor = null;
  }
}

function checkInputs(op: string, z: Tensor, labels: Tensor, table: MultisetTable): [number, number] {
  if (z.rank !== 2 || z.dtype !== "f32") {
    throw new ShapeError(op, `z must be f32 [N, h], got ${z.dtype}${fmtShape(z.shape)}`);
  }
  const [N, h] = z.shape;
  if (N !== table.N) {
    throw new ShapeError(
      op,
      `z ${fmtShape(z.shape)} has ${N} points but the multiset table is over N=${table.N}`,
    );
  }
  if (h < 1) throw new ShapeError(op, `z ${fmtShape(z.shape)} has no columns`);
  if (labels.dtype !== "i32" || labels.size !== N || labels.rank !== 1) {
    throw new ShapeError(op, `labels must be i32 [${N}], got ${labels.dtype}${fmtShape(labels.shape)}`);
  }
  if (N > 64) throw new ShapeError(op, `N=${N} points: the unrolled kernels support N <= 64`);
  const budget = loopBudgetError(gramExpTrips(N, h), `z ${fmtShape(z.shape)} (the Gram kernel)`);
  if (budget) throw new ShapeError(op, budget);
  return [N, h];
}

/** Records G/E/m of z into a new aux tensor [2N² + N]. */
function gramExp(z: Tensor, N: number, h: number, aux?: Tensor): Tensor {
  const out = aux ?? empty([2 * N * N + N]);
  runKernel({
    name: "scMultiset.gramExp",
    bindings: [read("z", z), write("aux", out)],
    body: gramExpBody(N, h),
    workgroups: grid1d(N * N, SCM_WG),
  });
  return out;
}

/** Scratch tensors of the partial-sum + reduction pipeline for one table. */
interface Pipeline {
  chunks: number;
  perChunk: number;
  /** partials, then each reduction level; the last is [N, N+1]. */
  levels: Tensor[];
  levelRows: number[];
}

function makePipeline(N: number, M: number): Pipeline {
  const chunks = Math.max(1, Math.ceil(M / MULTISETS_PER_CHUNK));
  const perChunk = Math.ceil(M / chunks);
  const width = N * (N + 1);
  const levelRows = [chunks];
  while (levelRows[levelRows.length - 1] > 1) {
    levelRows.push(Math.ceil(levelRows[levelRows.length - 1] / REDUCE_FAN_IN));
  }
  const levels = levelRows.map((r) => empty([r, width]));
  return { chunks, perChunk, levels, levelRows };
}

/** Records aux → partials → reductions; the result is the last level [1, N(N+1)]. */
function recordPartials(aux: Tensor, labels: Tensor, table: MultisetTable, p: Pipeline): Tensor {
  const N = table.N;
  const width = N * (N + 1);
  runKernel({
    name: "scMultiset.partials",
    bindings: [
      read("aux", aux),
      read("labels", labels, "array<i32>"),
      read("counts", table.tensor, "array<u32>"),
      write("out", p.levels[0]),
    ],
    body: multisetPartialsBody({
      layout: table.layout,
      M: table.count,
      chunks: p.chunks,
      perChunk: p.perChunk,
    }),
    workgroups: grid1d(N * p.chunks, SCM_WG),
  });
  for (let l = 1; l < p.levels.length; l++) {
    runKernel({
      name: "scMultiset.reduce",
      bindings: [read("src", p.levels[l - 1]), write("dst", p.levels[l])],
      body: reduceRowsBody(p.levelRows[l - 1], width, REDUCE_FAN_IN),
      workgroups: grid1d(p.levelRows[l] * width, SCM_WG),
    });
  }
  return p.levels[p.levels.length - 1];
}

/** Computes the reduced partials [1, N(N+1)] (Σ over the table of ∂ℓ/∂G rows, and the loss column). */
function reducedPartials(z: Tensor, labels: Tensor, table: MultisetTable, N: number, h: number): Tensor {
  const aux = gramExp(z, N, h);
  const p = makePipeline(N, table.count);
  const red = recordPartials(aux, labels, table, p);
  aux.dispose();
  for (const t of p.levels) if (t !== red) t.dispose();
  return red;
}

/** Result of {@link scLossAllMultisets}. */
export interface ScLossAllMultisetsResult {
  /** Mean batch loss over the table, a scalar `[]` (autograd to z). */
  loss: Tensor;
  /** Every batch loss [M], when requested (no autograd). */
  perBatch?: Tensor;
}

/**
 * Mean supervised contrastive batch loss over a table of multisets: (1/M) Σ_B ℓ_SC(Z; Y, B), with
 * ℓ_SC of Eq. 6 (sum over the b anchor occurrences, duplicates are positives of each other, anchors
 * whose class occurs once contribute 0). With `MultisetTable.all(N, b)` this is L_SC(Z; Y)/|𝔅|, the
 * quantity of Theorem 2 and Fig. 6. Points are used as given (put them on the sphere of radius ρ).
 *
 * Deterministic (fixed-order reductions, no atomics). The backward recomputes the per-multiset
 * gradients with respect to G = Z·Zᵀ and returns dZ = (dG + dGᵀ)·Z / M (times the output gradient).
 *
 * @param z points f32 [N, h]
 * @param labels i32 [N]
 * @param table multisets over the N points
 * @param options `perBatch: true` also returns every batch loss
 * @returns the mean loss (and optionally the batch losses)
 */
export function scLossAllMultisets(
  z: Tensor,
  labels: Tensor,
  table: MultisetTable,
  options: { perBatch?: boolean } = {},
): ScLossAllMultisetsResult {
  const [N, h] = checkInputs("scLossAllMultisets", z, labels, table);
  const M = table.count;
  const red = reducedPartials(z, labels, table, N, h);
  const loss = empty([]);
  runKernel({
    name: "scMultiset.meanLoss",
    bindings: [read("red", red), write("loss", loss)],
    body: meanLossBody(N, M),
    workgroups: [1],
  });
  red.dispose();
  record("scLossAllMultisets", [z, labels], loss, (gOut) => {
    const r = reducedPartials(z, labels, table, N, h);
    const dz = empty([N, h]);
    runKernel({
      name: "scMultiset.backward",
      bindings: [read("red", r), read("z", z), read("gout", gOut), write("dz", dz)],
      body: gramBackwardBody(N, h, M),
      workgroups: grid1d(N * h, SCM_WG),
    });
    r.dispose();
    return [dz, null];
  });
  const out: ScLossAllMultisetsResult = { loss };
  if (options.perBatch) out.perBatch = scMultisetBatchLosses(z, labels, table);
  return out;
}

/**
 * Every batch loss ℓ_SC(Z; Y, B_t) of the table, f32 [M] (no autograd), in table order.
 *
 * @param z points f32 [N, h]
 * @param labels i32 [N]
 * @param table multisets over the N points
 * @returns the M batch losses
 */
export function scMultisetBatchLosses(z: Tensor, labels: Tensor, table: MultisetTable): Tensor {
  const [N, h] = checkInputs("scMultisetBatchLosses", z, labels, table);
  const aux = gramExp(z, N, h);
  const losses = empty([table.count]);
  runKernel({
    name: "scMultiset.batchLosses",
    bindings: [
      read("aux", aux),
      read("labels", labels, "array<i32>"),
      read("counts", table.tensor, "array<u32>"),
      write("losses", losses),
    ],
    body: batchLossesBody(table.layout, table.count),
    workgroups: grid1d(table.count, SCM_WG),
  });
  aux.dispose();
  return losses;
}

/** Options of {@link ScMultisetTrainer}. */
export interface ScMultisetTrainerOptions {
  /** Learning rate per step: a constant, or a schedule of length `steps`. */
  lr: number | ArrayLike<number>;
  /** Number of steps the schedule and the loss log cover (required with a constant lr). */
  steps: number;
  /** Heavy-ball momentum (default 0.9). */
  momentum?: number;
  /** Sphere radius ρ (default 1). */
  radius?: number;
  /** Riemannian step: project gradient and velocity onto the tangent space (default true). */
  tangent?: boolean;
}

/**
 * Full-batch projected gradient descent of the mean loss over a multiset table, entirely on the GPU:
 * each `step()` records G/E → per-chunk partial sums → fixed-order reductions → one update kernel
 * (gradient (dG + dGᵀ)Z/M, heavy-ball momentum, projection to the sphere). No readback; the mean loss
 * at each step (before its update) is logged on the GPU and read with {@link ScMultisetTrainer.lossLog}.
 * `z` is updated in place.
 */
export class ScMultisetTrainer {
  /** The points [N, h], updated in place. */
  readonly z: Tensor;
  /** Labels i32 [N]. */
  readonly labels: Tensor;
  /** The multisets whose mean loss is minimised. */
  readonly table: MultisetTable;
  /** Length of the schedule and of the loss log. */
  readonly steps: number;
  #N: number;
  #h: number;
  #vel: Tensor;
  #lrs: Tensor;
  #state: Tensor;
  #log: Tensor;
  #aux: Tensor;
  #pipe: Pipeline;
  #stepBody: string;
  #done = 0;

  /**
   * A trainer for `z` (allocates the velocity, schedule, loss log and reduction scratch once).
   *
   * @param z points f32 [N, h] on the sphere (updated in place)
   * @param labels i32 [N]
   * @param table multisets over the N points
   * @param options learning rate (schedule), steps, momentum, radius
   */
  constructor(z: Tensor, labels: Tensor, table: MultisetTable, options: ScMultisetTrainerOptions) {
    const [N, h] = checkInputs("ScMultisetTrainer", z, labels, table);
    this.z = z;
    this.labels = labels;
    this.table = table;
    this.#N = N;
    this.#h = h;
    const steps = options.steps;
    if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`ScMultisetTrainer: steps must be >= 1`);
    const budget = loopBudgetError(sphereStepTrips(N, h), `z ${fmtShape(z.shape)} (the update kernel)`);
    if (budget) throw new ShapeError("ScMultisetTrainer", budget);
    this.steps = steps;
    const lrs = typeof options.lr === "number"
      ? new Float32Array(steps).fill(options.lr)
      : Float32Array.from(options.lr);
    if (lrs.length !== steps) {
      throw new RangeError(`ScMultisetTrainer: ${lrs.length} learning rates for ${steps} steps`);
    }
    this.#lrs = untrack(tensor(lrs));
    this.#vel = untrack(fill([N, h], 0));
    this.#state = untrack(fill([1], 0, "u32"));
    this.#log = untrack(fill([steps], 0));
    this.#aux = untrack(empty([2 * N * N + N]));
    this.#pipe = makePipeline(N, table.count);
    for (const t of this.#pipe.levels) untrack(t);
    this.#stepBody = sphereStepBody({
      N,
      h,
      M: table.count,
      radius: options.radius ?? 1,
      momentum: options.momentum ?? 0.9,
      steps,
      tangent: options.tangent ?? true,
    });
  }

  /** Steps recorded so far. */
  get stepsDone(): number {
    return this.#done;
  }

  /** Records one step (submitted at the next flush). */
  step(): void {
    gramExp(this.z, this.#N, this.#h, this.#aux);
    const red = recordPartials(this.#aux, this.labels, this.table, this.#pipe);
    runKernel({
      name: "scMultiset.sphereStep",
      bindings: [
        read("red", red),
        write("z", this.z),
        write("vel", this.#vel),
        read("lrs", this.#lrs),
        write("state", this.#state, "array<u32>"),
        write("lossLog", this.#log),
      ],
      body: this.#stepBody,
      workgroups: [1],
    });
    this.#done++;
  }

  /** The logged mean losses of the steps done so far (the loss at the Z each step started from). */
  async lossLog(): Promise<Float32Array> {
    const all = new Float32Array(await gpu().read(this.#log.range));
    return all.slice(0, Math.min(this.#done, this.steps));
  }

  /** The mean loss at the start of the most recent step. */
  async lastLoss(): Promise<number> {
    if (this.#done === 0) return NaN;
    const log = await this.lossLog();
    return log[log.length - 1];
  }

  /** Frees the trainer's buffers (not z, labels or the table). */
  dispose(): void {
    for (const t of [this.#vel, this.#lrs, this.#state, this.#log, this.#aux, ...this.#pipe.levels]) {
      t.dispose();
    }
  }
}

/** Options of {@link scSphereDescent}. */
export interface ScSphereDescentOptions {
  /** Total number of steps. */
  steps: number;
  /** Base learning rate. */
  lr: number;
  /** Schedule exponent p: lr_s = lr·(1 − s/steps)^p (default 0: constant). */
  power?: number;
  /** Heavy-ball momentum (default 0.9). */
  momentum?: number;
  /** Sphere radius ρ (default 1). */
  radius?: number;
  /** Multiset index (into the table) used at each step; default: multiset 0 at every step. */
  samples?: Uint32Array;
  /**
   * Steps per submission (default 2000; long submissions stall the software adapter). Each kernel
   * dispatch runs at most as many steps as one invocation's loop budget allows (`MAX_LOOP_TRIPS`), so a
   * submission may hold several dispatches.
   */
  stepsPerDispatch?: number;
  /** Called after each dispatch with the steps done and the current points [R, N, h] (borrowed). */
  onProgress?: (stepsDone: number, z: Tensor) => void | Promise<void>;
}

/** Result of {@link scSphereDescent}. */
export interface ScSphereDescentResult {
  /** Final points [R, N, h]. */
  z: Tensor;
  /** Loss of the last step's batch for each problem [R] (at the Z before the last update). */
  lastLoss: Tensor;
}

/**
 * Projected (Riemannian heavy-ball) gradient descent on the sphere of R independent problems, each
 * step minimising the loss of ONE batch of the table (multiset 0, or `samples[s]` at step s), with
 * all steps of a dispatch run inside the kernel (one invocation per problem). Used for the per-batch
 * minimisers of Fig. 5 (R restarts × label configurations) and the stochastic variant of Fig. 6.
 * The starting points are projected to the sphere first. No autograd.
 *
 * @param z0 starting points f32 [R, N, h] (not modified)
 * @param labels i32 [R, N] (labels of each problem)
 * @param table the batches, over N points
 * @param options steps, learning rate and schedule, momentum, radius, samples
 * @returns the final points and the last batch losses
 */
export async function scSphereDescent(
  z0: Tensor,
  labels: Tensor,
  table: MultisetTable,
  options: ScSphereDescentOptions,
): Promise<ScSphereDescentResult> {
  const op = "scSphereDescent";
  if (z0.rank !== 3 || z0.dtype !== "f32") {
    throw new ShapeError(op, `z0 must be f32 [R, N, h], got ${fmtShape(z0.shape)}`);
  }
  const [R, N, h] = z0.shape;
  if (N !== table.N) throw new ShapeError(op, `z0 ${fmtShape(z0.shape)} has ${N} points, table N=${table.N}`);
  if (labels.dtype !== "i32" || labels.rank !== 2 || labels.shape[0] !== R || labels.shape[1] !== N) {
    throw new ShapeError(op, `labels must be i32 [${R}, ${N}], got ${labels.dtype}${fmtShape(labels.shape)}`);
  }
  if (R < 1 || h < 1) throw new ShapeError(op, `empty problem ${fmtShape(z0.shape)}`);
  const trips = sphereDescentTrips(N, h);
  const stepsPerKernel = Math.floor((MAX_LOOP_TRIPS - trips.fixed) / trips.perStep);
  if (stepsPerKernel < 1) {
    throw new ShapeError(
      op,
      loopBudgetError(trips.fixed + trips.perStep, `one step of z0 ${fmtShape(z0.shape)}`)!,
    );
  }
  const radius = options.radius ?? 1;
  const steps = options.steps;
  const samples = options.samples ?? new Uint32Array([0]);
  for (const s of samples) {
    if (s >= table.count) throw new RangeError(`${op}: sample ${s} outside the table of ${table.count}`);
  }
  const g = gpu();
  // Project the start to the sphere on the host-free path: copy then normalise inside the first
  // dispatch is not possible, so normalise here with a tiny host round trip of R·N·h values.
  const host = await z0.toArray();
  const zs = new Float32Array(host.length);
  for (let r = 0; r < R * N; r++) {
    let n = 0;
    for (let d = 0; d < h; d++) n += host[r * h + d] ** 2;
    const sc = radius / Math.max(Math.sqrt(n), 1e-30);
    for (let d = 0; d < h; d++) zs[r * h + d] = host[r * h + d] * sc;
  }
  const z = tensor(zs, [R, N, h]);
  const vel = fill([R, N, h], 0);
  const sampleT = tensor(samples, [samples.length], { dtype: "u32" });
  const lastLoss = empty([R]);
  const body = sphereDescentBody({
    layout: table.layout,
    R,
    h,
    radius,
    momentum: options.momentum ?? 0.9,
    lr: options.lr,
    totalSteps: steps,
    power: options.power ?? 0,
    numSamples: samples.length,
  });
  const per = Math.max(1, options.stepsPerDispatch ?? 2000);
  for (let s0 = 0; s0 < steps; s0 += per) {
    const n = Math.min(per, steps - s0);
    for (let k0 = 0; k0 < n; k0 += stepsPerKernel) {
      const params = g.uniform(new Uint32Array([s0 + k0, Math.min(stepsPerKernel, n - k0), 0, 0]));
      runKernel({
        name: "scMultiset.sphereDescent",
        bindings: [
          write("z", z),
          write("vel", vel),
          read("labels", labels, "array<i32>"),
          read("counts", table.tensor, "array<u32>"),
          read("samples", sampleT, "array<u32>"),
          uniform("params", params, "Params"),
          write("lossOut", lastLoss),
        ],
        body,
        workgroups: grid1d(R, SCM_WG),
      });
    }
    g.flush();
    if (options.onProgress) await options.onProgress(s0 + n, z);
  }
  vel.dispose();
  sampleT.dispose();
  return { z, lastLoss };
}
