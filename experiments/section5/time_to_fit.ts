/**
 * Time to fit (Section 5.3, Figs. 2 and 8): the number of iterations until the training accuracy on
 * the (corrupted) labels first reaches 100%, measured at the evaluations (every 500 iterations in
 * the paper) and capped by the iteration budget (100k): a run without an evaluation at 100% within
 * the cap is "not fitted". Pure logic plus the figure; no GPU.
 * @module
 */
import type { VegaLiteSpec } from "../lib/plot.ts";

/** One evaluation of the training error (fraction of training images misclassified). */
export interface FitEvaluation {
  /** Completed iterations at the evaluation. */
  step: number;
  /** Training error w.r.t. the labels trained on (0 = 100% accuracy). */
  trainError: number;
}

/** Result of {@link timeToFit}. */
export interface TimeToFit {
  /** True when some evaluation at or below the cap had zero training error. */
  fitted: boolean;
  /** The step of the first such evaluation, or null ("not fitted"). */
  iterations: number | null;
  /** The iteration budget. */
  cap: number;
  /** Evaluations considered (those at steps ≤ cap). */
  evaluations: number;
  /** Last evaluated step ≤ cap (0 without evaluations). */
  lastStep: number;
  /** Training error at the last evaluation considered (NaN without evaluations). */
  lastError: number;
  /** Smallest training error seen (NaN without evaluations). */
  bestError: number;
}

/**
 * The time to fit of a sequence of evaluations: the first step (in step order) whose training error
 * is exactly 0, among the evaluations at steps ≤ `cap`. Evaluations past the cap are ignored; a
 * non-finite error never counts as fitted.
 */
export function timeToFit(evals: readonly FitEvaluation[], cap: number): TimeToFit {
  if (!(cap > 0)) throw new RangeError(`timeToFit: cap must be positive, got ${cap}`);
  const within = evals.filter((e) => e.step <= cap).sort((a, b) => a.step - b.step);
  let best = NaN;
  let iterations: number | null = null;
  for (const e of within) {
    if (Number.isFinite(e.trainError) && !(e.trainError >= best)) best = e.trainError;
    if (iterations === null && e.trainError === 0) iterations = e.step;
  }
  const last = within.at(-1);
  return {
    fitted: iterations !== null,
    iterations,
    cap,
    evaluations: within.length,
    lastStep: last?.step ?? 0,
    lastError: last?.trainError ?? NaN,
    bestError: best,
  };
}

/** Collects evaluations during a run and says when to stop (the first evaluation at 100%). */
export class FitTracker {
  readonly #evals: FitEvaluation[] = [];
  /** The iteration budget. */
  readonly cap: number;

  /** A tracker with budget `cap`, optionally continuing `previous` evaluations (a resumed run). */
  constructor(cap: number, previous: readonly FitEvaluation[] = []) {
    if (!(cap > 0)) throw new RangeError(`FitTracker: cap must be positive, got ${cap}`);
    this.cap = cap;
    for (const e of previous) this.#evals.push({ step: e.step, trainError: e.trainError });
  }

  /** Records an evaluation; returns true when the run has fitted (now or before). */
  add(step: number, trainError: number): boolean {
    this.#evals.push({ step, trainError });
    return this.fitted;
  }

  /** True once an evaluation within the cap had zero training error. */
  get fitted(): boolean {
    return this.result().fitted;
  }

  /** The evaluations so far (copies). */
  get evaluations(): FitEvaluation[] {
    return this.#evals.map((e) => ({ ...e }));
  }

  /** {@link timeToFit} of the evaluations so far. */
  result(): TimeToFit {
    return timeToFit(this.#evals, this.cap);
  }
}

/** One point of the time-to-fit figure. */
export interface TimeToFitPoint {
  /** Loss name (ce, ce-fix, sc). */
  loss: string;
  /** Label corruption p. */
  p: number;
  /** The result (iterations null = not fitted). */
  fit: TimeToFit;
}

/** Display names of the losses, as in the paper's legends. */
export const LOSS_LABELS: Record<string, string> = {
  ce: "CE",
  "ce-fix": "CE-fix",
  sc: "SC",
};

/**
 * The Fig. 8 chart: time to fit against label corruption, one line per loss; a run that did not fit
 * is drawn at the cap with a red square (the paper's marker), and the cap is a dashed rule.
 */
export function timeToFitFigure(points: readonly TimeToFitPoint[], cap: number, title: string): VegaLiteSpec {
  const rows = points.map((pt) => ({
    loss: LOSS_LABELS[pt.loss] ?? pt.loss,
    p: pt.p,
    iterations: pt.fit.iterations ?? cap,
    fitted: pt.fit.fitted ? "fitted" : "not fitted",
  }));
  const x = {
    field: "p",
    type: "quantitative",
    title: "label corruption p",
    scale: { domain: [0, 1], nice: false, zero: false },
  };
  const y = {
    field: "iterations",
    type: "quantitative",
    title: `time to fit (iterations, max. ${cap})`,
    scale: { domain: [0, cap * 1.05], nice: false, zero: true },
  };
  return {
    title: {
      text: title,
      subtitle: "first evaluation at 100% training accuracy on the corrupted labels; red square: not fitted",
    },
    width: 380,
    height: 260,
    layer: [
      {
        data: { values: [{ cap, label: `budget ${cap}` }] },
        mark: { type: "rule", strokeDash: [5, 4], color: "#888", strokeWidth: 1.2 },
        encoding: { y: { field: "cap", type: "quantitative", scale: y.scale } },
      },
      {
        data: { values: [{ cap, label: `budget ${cap}` }] },
        mark: {
          type: "text",
          align: "left",
          baseline: "bottom",
          dx: 3,
          dy: -2,
          fontSize: 10,
          color: "#666",
          x: 0,
        },
        encoding: {
          y: { field: "cap", type: "quantitative", scale: y.scale },
          text: { field: "label", type: "nominal" },
        },
      },
      {
        data: { values: rows },
        mark: { type: "line", point: { filled: true, size: 40 }, strokeWidth: 1.75 },
        encoding: {
          x,
          y,
          color: {
            field: "loss",
            type: "nominal",
            title: "loss",
            // Not red: red squares mark the runs that did not fit.
            scale: { domain: ["CE", "CE-fix", "SC"], range: ["#4c78a8", "#f58518", "#54a24b"] },
          },
          order: { field: "p", type: "quantitative" },
        },
      },
      {
        data: { values: rows.filter((r) => r.fitted === "not fitted") },
        mark: { type: "point", shape: "square", filled: true, size: 110, color: "red", opacity: 0.9 },
        encoding: { x, y },
      },
    ],
    resolve: { scale: { color: "independent" } },
  };
}
