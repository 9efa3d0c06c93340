/// <reference lib="dom" />
/**
 * Panel "Fig. 1 live": the SC row (points on the circle of radius ρ_Z) and the CE row (points in the
 * unit disc, with the classifier's weights) train in the page, with the code of `deno task fig1`
 * (`experiments/fig1_core.ts`, `experiments/toy/ce_toy.ts`) and its seeds, so at the defaults the
 * final values are the CLI's: 4.596 and 0.265. The loss curves are drawn with the bound of Theorem 2
 * (SC, the full batch) and of Corollary 2 (CE) at the current settings.
 *
 * @module
 */
import { FIG1_OPTIONS, lambdaForBound, trainScToy } from "../experiments/fig1_core.ts";
import { trainCeToy } from "../experiments/toy/ce_toy.ts";
import { ceBoundCorollary2, scAnchorValueAtSimplex } from "../theory/mod.ts";
import { drawLineChart, drawPoints } from "./chart.ts";
import {
  $,
  acquireGpu,
  numberInput,
  PauseGate,
  releaseGpu,
  RunStopped,
  setText,
  wireRunControls,
} from "./ui.ts";

const K = 3;

/** Steps at which fig1 reads back (and the page draws): every `every` steps, and the last. */
function frameSteps(every: number, steps: number): number[] {
  const out: number[] = [];
  for (let s = 0; s <= steps; s += every) out.push(s);
  return out;
}

/**
 * The paper's layout: a strip of small panels at the snapshot steps of `deno task fig1` (and the last
 * step), each titled with its loss. `strip` is emptied; returns a function that draws step `step`.
 */
function snapshotStrip(
  strip: HTMLElement,
  steps: readonly number[],
  what: string,
): (
  step: number,
  loss: number,
  Z: ArrayLike<number>,
  o: { radius: number; extent: number; W?: ArrayLike<number> },
) => void {
  strip.replaceChildren();
  const canvases = new Map<number, HTMLCanvasElement>();
  for (const step of steps) {
    const c = document.createElement("canvas");
    c.className = "thumb";
    c.setAttribute("role", "img");
    c.setAttribute("aria-label", `${what} at step ${step} (not reached yet)`);
    strip.append(c);
    canvases.set(step, c);
  }
  return (step, loss, Z, o) => {
    const c = canvases.get(step);
    if (!c) return;
    drawPoints(c, Z, labelsOf(Z.length / 2), { title: `${what} = ${loss.toFixed(3)}`, dot: 2, ...o });
    c.setAttribute("aria-label", `${what} at step ${step}: loss ${loss.toFixed(3)}`);
  };
}

/** Wires the Fig. 1 panel (its elements are in index.html under `#fig1`). */
export function mountFig1(): void {
  const O = FIG1_OPTIONS;
  const form = $<HTMLFormElement>("fig1-form");
  const start = $<HTMLButtonElement>("fig1-start");
  const pause = $<HTMLButtonElement>("fig1-pause");
  const reset = $<HTMLButtonElement>("fig1-reset");
  const status = $("fig1-status");
  const scCanvas = $<HTMLCanvasElement>("fig1-sc-points");
  const ceCanvas = $<HTMLCanvasElement>("fig1-ce-points");
  const scChart = $<HTMLCanvasElement>("fig1-sc-loss");
  const ceChart = $<HTMLCanvasElement>("fig1-ce-loss");
  const gate = new PauseGate(pause);
  let running = false;

  const settings = () => {
    const seed = numberInput("fig1-seed", { int: true, min: 0 });
    const rho2 = numberInput("fig1-rho2", { min: O.rho2.min });
    const lambdaIn = numberInput("fig1-lambda", { min: 0 });
    const scSteps = numberInput("fig1-sc-steps", { int: true, min: 1 });
    const ceSteps = numberInput("fig1-ce-steps", { int: true, min: 1 });
    const every = numberInput("fig1-speed", { int: true, min: 1 });
    const lambda = lambdaIn > 0 ? lambdaIn : lambdaForBound(K, 1, O.ceTarget.default);
    return { seed, rho2, lambda, lambdaAuto: !(lambdaIn > 0), scSteps, ceSteps, every };
  };

  const clear = () => {
    const s = settings();
    drawPoints(scCanvas, [], [], {
      title: "SC (not started)",
      radius: Math.sqrt(s.rho2),
      extent: Math.sqrt(s.rho2) * 1.1,
    });
    drawPoints(ceCanvas, [], [], { title: "CE (not started)", radius: 1, extent: 2.5 });
    drawLineChart(scChart, [], { title: "SC loss", xLabel: "step", yLabel: "mean SC loss per anchor" });
    drawLineChart(ceChart, [], { title: "CE objective", xLabel: "step", yLabel: "L_CE + λ‖W‖²" });
    for (const id of ["fig1-sc-final", "fig1-ce-final"]) {
      $(id).textContent = "—";
      delete $(id).dataset.value;
    }
  };

  const run = async () => {
    let s;
    try {
      s = settings();
    } catch (e) {
      setText(status, (e as Error).message);
      return;
    }
    const other = acquireGpu("Fig. 1");
    if (other) {
      setText(status, `${other} is using the GPU (running or paused): finish or reset it first`);
      return;
    }
    running = true;
    gate.reset();
    start.disabled = true;
    pause.disabled = false;
    form.dataset.state = "running";
    clear();
    const N = K * O.nPerClass.default;
    const rho = Math.sqrt(s.rho2);
    const scBound = scAnchorValueAtSimplex(O.nPerClass.default, N, K, s.rho2);
    const ce = ceBoundCorollary2(K, 1, s.lambda);
    setText(
      $("fig1-bounds"),
      `Theorem 2 (full batch, per anchor, ρ² = ${s.rho2}): ${
        scBound.toFixed(6)
      } · Corollary 2 (K = 3, ρ_Z = 1, ` +
        `λ = ${s.lambda.toPrecision(6)}${s.lambdaAuto ? ", chosen so that the bound is 0.265" : ""}): ` +
        `${ce.bound.toFixed(6)} at r_W = ${ce.rW.toFixed(6)}`,
    );
    const snaps = (list: readonly number[], steps: number) =>
      [...new Set([...list.filter((t) => t < steps), steps])].sort((a, b) => a - b);
    const scSnaps = snaps(O.scSnapshots.default, s.scSteps);
    const ceSnaps = snaps(O.ceSnapshots.default, s.ceSteps);
    const scThumb = snapshotStrip($("fig1-sc-strip"), scSnaps, "SC");
    const ceThumb = snapshotStrip($("fig1-ce-strip"), ceSnaps, "CE");
    const scCurve: { x: number; y: number }[] = [];
    const ceCurve: { x: number; y: number }[] = [];
    const t0 = performance.now();
    try {
      const scOut = await trainScToy({
        nPerClass: O.nPerClass.default,
        rho2: s.rho2,
        steps: s.scSteps,
        lr: O.scLr.default,
        momentum: O.momentum.default,
        finalFraction: O.finalFraction.default,
        finalLrScale: O.finalLrScale.default,
        seed: s.seed * 7919 + 1,
        logSteps: [...frameSteps(s.every, s.scSteps), ...scSnaps],
        onLog: async ({ step, loss, Z }) => {
          scThumb(step, loss, Z, { radius: rho, extent: rho * 1.1 });
          scCurve.push({ x: step, y: loss });
          drawPoints(scCanvas, Z, labelsOf(N), {
            title: `SC = ${loss.toFixed(3)} (step ${step})`,
            radius: rho,
            extent: rho * 1.1,
          });
          scCanvas.setAttribute(
            "aria-label",
            `SC points on the circle of radius ${rho.toFixed(3)} at step ${step}, loss ${loss.toFixed(4)}`,
          );
          drawLineChart(scChart, [
            { name: "SC loss (mean per anchor)", color: "#1f77b4", points: scCurve },
            { name: "Theorem 2 bound", color: "#d62728", dash: [6, 4], points: flat(scBound, s.scSteps) },
          ], {
            title: "SC loss",
            xLabel: "step",
            yLabel: "mean SC loss per anchor",
            xDomain: [0, s.scSteps],
          });
          setText(status, `SC step ${step} / ${s.scSteps}: ${loss.toFixed(6)}`);
          await gate.frame();
        },
      });
      const scFinal = scOut.records[scOut.records.length - 1].loss;
      $("fig1-sc-final").textContent = `${scFinal.toFixed(6)} (bound ${scBound.toFixed(6)})`;
      $("fig1-sc-final").dataset.value = String(scFinal);

      const ceOut = await trainCeToy({
        K,
        h: 2,
        nPerClass: O.nPerClass.default,
        lambda: s.lambda,
        rhoZ: 1,
        steps: s.ceSteps,
        lrZ: O.ceLrZ.default,
        lrW: O.ceLrW.default,
        momentum: O.momentum.default,
        finalFraction: O.finalFraction.default,
        finalLrScale: O.finalLrScale.default,
        seed: s.seed * 7919 + 2,
        logSteps: [...frameSteps(s.every, s.ceSteps), ...ceSnaps],
        keepSnapshots: true,
        onLog: async (r) => {
          ceCurve.push({ x: r.step, y: r.objective });
          let extent = 1.1;
          for (const v of r.W!) extent = Math.max(extent, Math.abs(v) * 1.2);
          ceThumb(r.step, r.objective, r.Z!, { radius: 1, extent: Math.min(extent, 4), W: r.W });
          drawPoints(ceCanvas, r.Z!, labelsOf(N), {
            title: `CE = ${r.objective.toFixed(3)} (step ${r.step})`,
            radius: 1,
            extent: Math.min(extent, 4),
            W: r.W,
          });
          ceCanvas.setAttribute(
            "aria-label",
            `CE points in the unit disc with the three weight vectors (grey) at step ${r.step}, ` +
              `objective ${r.objective.toFixed(4)}`,
          );
          drawLineChart(ceChart, [
            { name: "L_CE + λ‖W‖²", color: "#ff7f0e", points: ceCurve },
            { name: "Corollary 2 bound", color: "#d62728", dash: [6, 4], points: flat(ce.bound, s.ceSteps) },
          ], { title: "CE objective", xLabel: "step", yLabel: "L_CE + λ‖W‖²", xDomain: [0, s.ceSteps] });
          setText(status, `CE step ${r.step} / ${s.ceSteps}: ${r.objective.toFixed(6)}`);
          await gate.frame();
        },
      });
      const ceFinal = ceOut.records[ceOut.records.length - 1].objective;
      $("fig1-ce-final").textContent = `${ceFinal.toFixed(6)} (bound ${ceOut.bound.toFixed(6)})`;
      $("fig1-ce-final").dataset.value = String(ceFinal);
      setText(
        status,
        `done in ${((performance.now() - t0) / 1000).toFixed(1)} s: SC ${scFinal.toFixed(3)}, CE ${
          ceFinal.toFixed(3)
        }`,
      );
      form.dataset.state = "done";
    } catch (e) {
      if (!(e instanceof RunStopped)) {
        setText(status, `failed: ${(e as Error).message}`);
        form.dataset.state = "failed";
        console.error(e);
      } else {
        clear();
        setText(status, "reset");
        form.dataset.state = "idle";
      }
    } finally {
      running = false;
      releaseGpu("Fig. 1");
      start.disabled = false;
      pause.disabled = true;
    }
  };

  wireRunControls({ form, reset, start, status, gate, isRunning: () => running, run: run, clear });
}

function flat(y: number, steps: number): { x: number; y: number }[] {
  return [{ x: 0, y }, { x: steps, y }];
}

const labelCache = new Map<number, Int32Array>();
function labelsOf(N: number): Int32Array {
  let l = labelCache.get(N);
  if (!l) labelCache.set(N, l = Int32Array.from({ length: N }, (_, i) => Math.floor(i / (N / K))));
  return l;
}
