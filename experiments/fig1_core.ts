/**
 * The computation of Fig. 1 without files: its options and defaults, the λ of the CE row, and the SC
 * row's trainer. Web-standard (no `Deno`, no `node:`), so `experiments/fig1.ts` and the page in `web/`
 * run the same code; the CE row is `trainCeToy` of `toy/ce_toy.ts`.
 *
 * @module
 */
import { Rng } from "../data/sampler.ts";
import { TensorScope } from "../engine/scope.ts";
import { tensor } from "../engine/tensor.ts";
import "../engine/autograd.ts";
import { supConLoss } from "../engine/ops/loss.ts";
import { SGD } from "../engine/optim/sgd.ts";
import { projectToSphere } from "../engine/optim/projection.ts";
import { ceBoundCorollary2 } from "../theory/mod.ts";
import { PAPER_FIG1 } from "./paper.ts";
import { balancedLabels, FINAL_PHASE_OPTIONS, sampleBall } from "./toy/ce_toy.ts";

/** Command-line options of fig1 (besides --out, --seed, --json, --quiet). */
export const FIG1_OPTIONS = {
  nPerClass: { type: "integer", default: 100, min: 2, description: "points per class (3 classes)" },
  rho2: { type: "number", default: 5, min: 1e-6, description: "ρ_Z² = 1/τ of the SC circle" },
  scSteps: { type: "integer", default: 400, min: 1, description: "SC gradient steps" },
  scLr: { type: "number", default: 0.05, min: 0, description: "SC learning rate (on the summed loss)" },
  scSnapshots: {
    type: "integer[]",
    default: [0, 5, 7, 32, 50],
    min: 0,
    description: "SC snapshot steps (the final step is added)",
  },
  ceSteps: { type: "integer", default: 600, min: 1, description: "CE gradient steps" },
  ceLrZ: { type: "number", default: 0.05, min: 0, description: "CE learning rate per point (Z's lr is ·N)" },
  ceLrW: { type: "number", default: 0.05, min: 0, description: "CE learning rate of W" },
  ceSnapshots: {
    type: "integer[]",
    default: [0, 3, 4, 5, 7],
    min: 0,
    description: "CE snapshot steps (the final step is added)",
  },
  lambda: {
    type: "number",
    default: 0,
    min: 0,
    description: "CE penalty λ (0: the λ whose Corollary 2 bound equals --ce-target)",
  },
  ceTarget: {
    type: "number",
    default: PAPER_FIG1.ce[5],
    min: 1e-6,
    description: "target final CE value for λ = 0",
  },
  momentum: { type: "number", default: 0.9, min: 0, max: 0.999, description: "momentum of both runs" },
  ...FINAL_PHASE_OPTIONS,
  logEvery: { type: "integer", default: 10, min: 1, description: "steps between loss readbacks" },
} as const;

/** The λ whose Corollary 2 bound (K classes, ρ_Z) equals `target` (bisection in log λ). */
export function lambdaForBound(K: number, rhoZ: number, target: number): number {
  let lo = 1e-9, hi = 1e3; // bound increases with λ
  if (!(ceBoundCorollary2(K, rhoZ, lo).bound < target && ceBoundCorollary2(K, rhoZ, hi).bound > target)) {
    throw new RangeError(
      `lambdaForBound: target ${target} outside the bound's range for K=${K}, ρ_Z=${rhoZ}`,
    );
  }
  for (let i = 0; i < 200; i++) {
    const mid = Math.sqrt(lo * hi);
    if (ceBoundCorollary2(K, rhoZ, mid).bound < target) lo = mid;
    else hi = mid;
  }
  return Math.sqrt(lo * hi);
}

/** Options of {@link trainScToy} (the SC row of Fig. 1). */
export interface ScToyOptions {
  /** Points per class (3 classes). */
  nPerClass: number;
  /** ρ_Z²: the points live on the circle of radius ρ_Z. */
  rho2: number;
  /** Gradient steps. */
  steps: number;
  /** Learning rate (on the summed loss). */
  lr: number;
  /** Momentum. */
  momentum: number;
  /** Fraction of the steps at the end run at `finalLrScale` times the learning rate. */
  finalFraction: number;
  /** Learning-rate factor of the final phase. */
  finalLrScale: number;
  /** Seed of the random start (fig1 passes `seed·7919 + 1`). */
  seed: number;
  /** Steps at which the loss is read back (`steps` is always included). */
  logSteps: readonly number[];
  /** Steps at which a copy of the points is kept too. */
  snapshotSteps?: readonly number[];
  /**
   * Called after each readback with the step, the loss (mean per anchor) and the points; awaited, so a
   * caller can pause the run here, or end it by throwing (the tensors are freed).
   */
  onLog?: (record: { step: number; loss: number; Z: Float32Array }) => void | Promise<void>;
}

/** Result of {@link trainScToy}. */
export interface ScToyResult {
  /** Readbacks at the log steps: the SC loss of the full batch, mean per anchor. */
  records: { step: number; loss: number }[];
  /** Copies of the points at the snapshot steps. */
  snapshots: { step: number; loss: number; Z: Float32Array }[];
  /** Final points, flat [N·2]. */
  Z: Float32Array;
  /** Labels (class-major). */
  labels: Int32Array;
  /** Wall time, seconds. */
  seconds: number;
}

/**
 * Minimises the SC loss of the full batch of all points on the circle of radius √rho2 (Z projected
 * back after each step). The device must be initialised (`await initDevice()`).
 */
export async function trainScToy(o: ScToyOptions): Promise<ScToyResult> {
  const t0 = performance.now();
  const K = 3, h = 2, N = K * o.nPerClass, rho = Math.sqrt(o.rho2), steps = o.steps;
  const rng = new Rng(o.seed);
  const labelsHost = balancedLabels(K, o.nPerClass);
  const Z = tensor(sampleBall(N, h, rho, rng, true), [N, h], { requiresGrad: true, name: "Z" });
  const labels = tensor(labelsHost, [N], { dtype: "i32" });
  const opt = new SGD([Z], { lr: o.lr, momentum: o.momentum, weightDecay: 0 });
  const snaps = new Set(o.snapshotSteps ?? []);
  const logs = new Set([...o.logSteps, ...snaps, steps]);
  const finalStart = Math.round(steps * (1 - o.finalFraction));
  const records: { step: number; loss: number }[] = [];
  const snapshots: { step: number; loss: number; Z: Float32Array }[] = [];
  try {
    for (let step = 0; step <= steps; step++) {
      const scope = new TensorScope();
      try {
        const loss = supConLoss(Z, labels);
        if (logs.has(step)) {
          const value = (await loss.item()) / N;
          records.push({ step, loss: value });
          const z = Float32Array.from(await Z.toArray());
          if (snaps.has(step)) snapshots.push({ step, loss: value, Z: z });
          await o.onLog?.({ step, loss: value, Z: z });
        }
        if (step === steps) break;
        loss.backward();
        opt.step(o.lr * (step >= finalStart ? o.finalLrScale : 1));
        opt.zeroGrad();
        projectToSphere(Z, rho);
      } finally {
        scope.dispose();
      }
    }
    return {
      records,
      snapshots,
      Z: Float32Array.from(await Z.toArray()),
      labels: labelsHost,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    Z.dispose();
    labels.dispose();
    opt.dispose();
  }
}
