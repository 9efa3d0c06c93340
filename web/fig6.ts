/// <reference lib="dom" />
/**
 * Panel "Fig. 6 live": K = 3 classes × 4 points on S¹, batch size 9: the exact mean SC loss over all
 * C(20, 9) = 167,960 multisets minimised by full-batch projected heavy-ball descent on the GPU (the
 * engine's `ScMultisetTrainer`, as `deno task fig6`; options, start points and grouping from
 * `experiments/fig6_core.ts`). Drawn while it runs: the mean loss minus Theorem 2's bound on a log scale
 * and the points on the circle; at the end, the histogram of every batch loss by label configuration
 * and the float64 mean against the bound (paper: 12.12016 vs 12.12015).
 *
 * @module
 */
import {
  balancedLabels,
  FIG6_OPTIONS,
  groupBatchLosses,
  sphereStartPoints,
} from "../experiments/fig6_core.ts";
import { PAPER_FIG6 } from "../experiments/paper.ts";
import {
  gpu,
  MultisetTable,
  Rng,
  scBound,
  scLossAllMultisetsF64,
  scMultisetBatchLosses,
  ScMultisetTrainer,
  tensor,
} from "../mod.ts";
import { CLASS_COLORS, drawGroupedHistogram, drawLineChart, drawPoints } from "./chart.ts";
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

/** Wires the Fig. 6 panel (elements under `#fig6`). */
export function mountFig6(): void {
  const O = FIG6_OPTIONS;
  const K = O.k.default, n = O.nPerClass.default, N = K * n, b = O.b.default, h = O.h.default;
  const rho = O.rho.default;
  const form = $<HTMLFormElement>("fig6-form");
  const start = $<HTMLButtonElement>("fig6-start");
  const pause = $<HTMLButtonElement>("fig6-pause");
  const reset = $<HTMLButtonElement>("fig6-reset");
  const status = $("fig6-status");
  const pointsCanvas = $<HTMLCanvasElement>("fig6-points");
  const gapCanvas = $<HTMLCanvasElement>("fig6-gap");
  const histCanvas = $<HTMLCanvasElement>("fig6-hist");
  const gate = new PauseGate(pause);
  const labelsHost = balancedLabels(K, n);
  const bound = scBound({ N, K, b, rho2: rho * rho }).mean;
  let running = false;
  $("fig6-bound").textContent = bound.toFixed(6);

  const clear = () => {
    drawPoints(pointsCanvas, [], [], {
      title: "points on S¹ (not started)",
      radius: rho,
      extent: rho * 1.15,
    });
    drawLineChart(gapCanvas, [], {
      title: "mean SC loss − bound",
      xLabel: "step",
      yLabel: "gap",
      logY: true,
    });
    drawGroupedHistogram(histCanvas, [], {
      title: "batch losses by label configuration",
      xLabel: "batch loss",
    });
    $("fig6-final").textContent = "—";
    delete $("fig6-final").dataset.value;
  };

  const runIt = async () => {
    let steps: number, lr: number, seed: number, every: number;
    try {
      seed = numberInput("fig6-seed", { int: true, min: 0 });
      steps = numberInput("fig6-steps", { int: true, min: 1 });
      lr = numberInput("fig6-lr", { min: 0 });
      every = numberInput("fig6-speed", { int: true, min: 1 });
    } catch (e) {
      setText(status, (e as Error).message);
      return;
    }
    const other = acquireGpu("Fig. 6");
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
    const t0 = performance.now();
    setText(status, "enumerating the 167,960 multisets…");
    const table = MultisetTable.all(N, b);
    const labels = tensor(labelsHost, [N], { dtype: "i32" });
    const z = tensor(sphereStartPoints(N, h, rho, new Rng(seed)), [N, h]);
    const trainer = new ScMultisetTrainer(z, labels, table, {
      lr: Float32Array.from({ length: steps }, () => lr), // lr·(1 − s/T)^0, fig6's full-batch default
      steps,
      momentum: O.momentum.default,
      radius: rho,
    });
    const gapCurve: { x: number; y: number }[] = [];
    try {
      for (let s = 0; s < steps; s++) {
        trainer.step();
        gpu().flush();
        if ((s + 1) % every === 0 || s + 1 === steps) {
          const last = await trainer.lastLoss();
          gapCurve.push({ x: s, y: last - bound });
          drawLineChart(gapCanvas, [
            { name: "mean loss over 𝔅 − Theorem 2 bound", color: "#1f77b4", points: gapCurve },
          ], {
            title: "mean SC loss − bound",
            xLabel: "step",
            yLabel: "gap",
            logY: true,
            xDomain: [0, steps],
          });
          drawPoints(pointsCanvas, await z.toArray(), labelsHost, {
            title: `step ${s + 1}: mean loss ${last.toFixed(5)}`,
            radius: rho,
            extent: rho * 1.15,
            dot: 5,
          });
          setText(
            status,
            `step ${s + 1} / ${steps}: mean loss ${last.toFixed(6)} (bound ${bound.toFixed(6)})`,
          );
          await gate.frame();
        }
      }
      // The whole curve, from the GPU's log, then every batch loss and the float64 mean.
      const log = await trainer.lossLog();
      gapCurve.length = 0;
      log.forEach((v, s) => gapCurve.push({ x: s, y: v - bound }));
      drawLineChart(gapCanvas, [
        { name: "mean loss over 𝔅 − Theorem 2 bound", color: "#1f77b4", points: gapCurve },
      ], { title: "mean SC loss − bound", xLabel: "step", yLabel: "gap", logY: true, xDomain: [0, steps] });
      setText(status, "every batch loss…");
      const lossesT = scMultisetBatchLosses(z, labels, table);
      const losses = await lossesT.toArray();
      lossesT.dispose();
      const zFinal = Float64Array.from(await z.toArray());
      for (let i = 0; i < N; i++) {
        const r = Math.hypot(...zFinal.subarray(i * h, i * h + h));
        for (let d = 0; d < h; d++) zFinal[i * h + d] *= rho / r;
      }
      const empirical = scLossAllMultisetsF64({ data: zFinal, dim: h }, labelsHost, b).mean;
      const { groups, patterns } = groupBatchLosses(labelsHost, K, rho, table, losses);
      drawGroupedHistogram(
        histCanvas,
        patterns.map((p, i) => ({
          name: p.pattern,
          color: CLASS_COLORS[i % CLASS_COLORS.length],
          values: groups.get(p.pattern)!.losses,
        })),
        { title: "batch losses by label configuration", xLabel: "batch loss" },
      );
      histCanvas.setAttribute(
        "aria-label",
        `histogram of the ${table.count} batch losses by label configuration: ` +
          patterns.map((p) => `${p.pattern} ${p.batches} batches, mean ${p.meanLoss.toFixed(3)}`).join("; "),
      );
      const rel = (empirical - bound) / bound;
      $("fig6-final").textContent = `${empirical.toFixed(6)} vs bound ${bound.toFixed(6)} (relative gap ` +
        `${rel.toExponential(2)}; paper ${PAPER_FIG6.empirical} vs ${PAPER_FIG6.theory})`;
      $("fig6-final").dataset.value = String(empirical);
      setText(status, `done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      form.dataset.state = "done";
    } catch (e) {
      if (e instanceof RunStopped) {
        clear();
        setText(status, "reset");
        form.dataset.state = "idle";
      } else {
        console.error(e);
        setText(status, `failed: ${(e as Error).message}`);
        form.dataset.state = "failed";
      }
    } finally {
      trainer.dispose();
      z.dispose();
      labels.dispose();
      table.dispose();
      running = false;
      releaseGpu("Fig. 6");
      start.disabled = false;
      pause.disabled = true;
    }
  };

  wireRunControls({ form, reset, start, status, gate, isRunning: () => running, run: runIt, clear });
  setText(status, "ready");
}
