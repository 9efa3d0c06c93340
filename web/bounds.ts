/// <reference lib="dom" />
/**
 * Panel "Bounds calculator": Theorem 2 (mean over all multisets and the i.i.d.-batch expectation),
 * Theorem 1 and Corollaries 1–2 with r_W, and γ at the simplex, for inputs N, K, b, ρ², λ. The numbers
 * come from `theory/` through {@link computeBounds}, the same calls `deno task theory` makes:
 *
 * - `sc-bound --N --K --b --rho2` → Theorem 2's mean, |𝔅|, log of the total, i.i.d. expectation;
 * - `rw --K --rho2 --lambda` → r_W; `ce-bound --K --rho2 --lambda --rW r_W --frobW √K·r_W` →
 *   Corollary 2 (and Corollary 1 / Theorem 1 at the classifier Corollary 2 says is optimal);
 * - `gamma --K` → γ at the regular simplex.
 *
 * Works without WebGPU (pure TypeScript).
 *
 * @module
 */
import {
  ceBoundCorollary1,
  ceBoundCorollary2,
  ceBoundTheorem1,
  gammaSimplex,
  scBound,
  scBoundIidExpectation,
  validateScParams,
} from "../theory/mod.ts";
import { $, numberInput, setText } from "./ui.ts";

/** Inputs of the calculator. */
export interface BoundsInput {
  /** Training-set size (divisible by K). */
  N: number;
  /** Classes. */
  K: number;
  /** Batch size. */
  b: number;
  /** ρ_Z² (= 1/τ for SC). */
  rho2: number;
  /** λ of L_CE + λ‖W‖²_F (weight decay / 2). */
  lambda: number;
}

/** Every number the calculator shows, as `deno task theory … --json` names them. */
export interface BoundsResult {
  /** Theorem 2: bound on L_SC / |𝔅| (mean per multiset). */
  scMean: number;
  /** The method scBound chose (exact BigInt or log space). */
  scMethod: string;
  /** |𝔅| = C(N+b−1, b), as text (exact when small). */
  numBatches: string;
  /** log |𝔅|. */
  logNumBatches: number;
  /** log of the bound on the sum over 𝔅. */
  logTotal: number;
  /** Theorem 2's value in expectation over i.i.d. batches. */
  iidExpectation: number;
  /** r_W of Corollary 2. */
  rW: number;
  /** Corollary 2: L_CE + λ‖W‖²_F ≥ this. */
  corollary2: number;
  /** Corollary 1 at max‖w_y‖ = r_W. */
  corollary1: number;
  /** Theorem 1 at ‖W‖_F = √K·r_W. */
  theorem1: number;
  /** ‖W‖_F used for Theorem 1. */
  frobW: number;
  /** γ at the regular simplex. */
  gamma: number;
}

/** The calculator's numbers for one input (throws RangeError on an invalid one). */
export function computeBounds(p: BoundsInput): BoundsResult {
  validateScParams(p, "bounds");
  if (!(p.lambda > 0)) throw new RangeError(`bounds: λ must be > 0 (got ${p.lambda})`);
  const rho = Math.sqrt(p.rho2);
  const sc = scBound({ N: p.N, K: p.K, b: p.b, rho2: p.rho2 });
  const c2 = ceBoundCorollary2(p.K, rho, p.lambda);
  const frobW = Math.sqrt(p.K) * c2.rW;
  return {
    scMean: sc.mean,
    scMethod: sc.method,
    numBatches: sc.numBatches !== null ? sc.numBatches.toString() : `exp(${sc.logNumBatches})`,
    logNumBatches: sc.logNumBatches,
    logTotal: sc.logTotal,
    iidExpectation: scBoundIidExpectation({ N: p.N, K: p.K, b: p.b, rho2: p.rho2 }),
    rW: c2.rW,
    corollary2: c2.bound,
    corollary1: ceBoundCorollary1(p.K, rho, c2.rW),
    theorem1: ceBoundTheorem1(p.K, rho, frobW),
    frobW,
    gamma: gammaSimplex(p.K),
  };
}

/** 12 significant digits, trailing zeros trimmed (as the CLI prints). */
export function fmt(x: number, digits = 12): string {
  return Number.isFinite(x)
    ? x.toPrecision(digits).replace(/(\.\d*?)0+(e|$)/, "$1$2").replace(/\.(e|$)/, "$1")
    : String(x);
}

function countText(s: string): string {
  return s.length <= 30 ? s : `${s[0]}.${s.slice(1, 10)}e+${s.length - 1} (${s.length} digits)`;
}

/** Wires the calculator (elements under `#bounds` in index.html); computes on every input. */
export function mountBounds(): void {
  const form = $<HTMLFormElement>("bounds-form");
  const out = $("bounds-out");
  const status = $("bounds-status");
  const update = () => {
    let r: BoundsResult, p: BoundsInput;
    try {
      p = {
        N: numberInput("bounds-N", { int: true, min: 2 }),
        K: numberInput("bounds-K", { int: true, min: 2 }),
        b: numberInput("bounds-b", { int: true, min: 2 }),
        rho2: numberInput("bounds-rho2", { min: 1e-12 }),
        lambda: numberInput("bounds-lambda", { min: 1e-300 }),
      };
      r = computeBounds(p);
    } catch (e) {
      setText(status, (e as Error).message);
      out.hidden = true;
      form.dataset.state = "invalid";
      return;
    }
    const rows: [string, string, string, string][] = [
      ["sc-mean", "Theorem 2: L_SC / |𝔅| ≥", fmt(r.scMean), String(r.scMean)],
      ["sc-batches", "|𝔅| = C(N+b−1, b)", countText(r.numBatches), r.numBatches],
      ["sc-logtotal", "log of the bound on L_SC (sum over 𝔅)", fmt(r.logTotal), String(r.logTotal)],
      ["sc-iid", "Theorem 2, i.i.d. batches (expectation)", fmt(r.iidExpectation), String(r.iidExpectation)],
      ["rw", "r_W (Corollary 2's optimal ‖w_y‖)", fmt(r.rW, 15), String(r.rW)],
      ["c2", "Corollary 2: L_CE + λ‖W‖²_F ≥", fmt(r.corollary2), String(r.corollary2)],
      ["c1", "Corollary 1 at max ‖w_y‖ = r_W: L_CE ≥", fmt(r.corollary1), String(r.corollary1)],
      ["t1", `Theorem 1 at ‖W‖_F = √K·r_W = ${fmt(r.frobW, 8)}: L_CE ≥`, fmt(r.theorem1), String(r.theorem1)],
      ["gamma", "γ at the regular simplex", fmt(r.gamma, 15), String(r.gamma)],
    ];
    const body = out.querySelector("tbody")!;
    body.replaceChildren(...rows.map(([key, label, text, value]) => {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = label;
      const td = document.createElement("td");
      td.textContent = text;
      td.dataset.key = key;
      td.dataset.value = value;
      tr.append(th, td);
      return tr;
    }));
    out.hidden = false;
    const cmd = `deno task theory sc-bound --N ${p.N} --K ${p.K} --b ${p.b} --rho2 ${p.rho2}`;
    setText(status, `Theorem 2 by the ${r.scMethod} method; the CLI gives the same: ${cmd}`);
    form.dataset.state = "ok";
  };
  form.addEventListener("input", update);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    update();
  });
  update();
}
