/**
 * The autotuner's by-layer report (`bench/tune_cases.ts`): ResNet-18 layer names from convolution shapes,
 * and the aggregation of tuning sites per layer and pass (dispatches per step × ms, the heuristic's path
 * against the tuned path, a changed route judged by its whole-pass times, re-timed sums). Synthetic
 * sites only: no device, no timing.
 */
import assert from "node:assert/strict";
import { byLayer, byLayerTable, layerName, type SiteRow, type TuneRun } from "../bench/tune_cases.ts";

function site(
  name: string,
  kind: "gemm" | "route",
  o: Partial<SiteRow> = {},
): SiteRow {
  return {
    key: `${kind === "gemm" ? "gemm" : "conv-route"}|${name}|0`,
    kind,
    name,
    label: name,
    heuristicCount: 1,
    tunedCount: 1,
    heuristic: "h",
    choice: "h",
    source: "measured",
    heuristicMs: 1,
    tunedMs: 1,
    timed: 2,
    candidates: 2,
    method: "timestamp",
    ...o,
  };
}

Deno.test("layerName: stem, stage shortcuts, strided first convolutions and the rest", () => {
  assert.equal(layerName("3→64 3×3 s1 32×32", 64), "stem 3→64 3×3");
  assert.equal(layerName("64→64 3×3 s1 32×32", 64), "layer1 64→64 3×3 (32×32)");
  assert.equal(layerName("64→128 3×3 s2 32×32", 64), "layer2.0 64→128 3×3 s2");
  assert.equal(layerName("64→128 1×1 s2 32×32", 64), "layer2 shortcut 64→128 1×1 s2");
  assert.equal(layerName("512→512 3×3 s1 4×4", 64), "layer4 512→512 3×3 (4×4)");
  assert.equal(layerName("16→32 3×3 s2 32×32", 16), "layer2.0 16→32 3×3 s2"); // width 0.25
  assert.equal(layerName("not a shape", 64), "not a shape");
});

Deno.test("byLayer: per layer and pass, dispatches × ms on each path; routes and re-timing", () => {
  const sites: SiteRow[] = [
    site("conv2d.forward route 64→64 3×3 s1 p1 32×32 N=8", "route", {
      heuristicCount: 4,
      tunedCount: 4,
      heuristic: "channels-last",
      choice: "im2col",
      heuristicMs: 10,
      tunedMs: 8,
      verify: { heuristicMs: 9, tunedMs: 12, k: 1, reps: 3 },
    }),
    // the heuristic path's GEMM (channels-last) and the tuned path's (im2col)
    site("conv2d.forwardChannelsLast 64→64 3×3 s1 32×32", "gemm", {
      heuristicCount: 4,
      tunedCount: 0,
      heuristicMs: 7,
    }),
    site("conv2d.forward 64→64 3×3 s1 32×32", "gemm", {
      heuristicCount: 0,
      tunedCount: 4,
      choice: "t",
      heuristicMs: 9,
      tunedMs: 6,
      verify: { heuristicMs: 100, tunedMs: 100, k: 1, reps: 3 }, // ignored: the route stands for the pass
    }),
    site("conv2d.gradWeight 64→64 3×3 s1 32×32", "gemm", {
      heuristicCount: 4,
      tunedCount: 4,
      choice: "t",
      heuristicMs: 5,
      tunedMs: 4,
      verify: { heuristicMs: 5, tunedMs: 6, k: 2, reps: 3 },
    }),
    site("conv2d.gradInputChannelsLast 64→128 3×3 s2 32×32", "gemm", { heuristicMs: 2, tunedMs: 2 }),
    site("conv2d.gradInputChannelsLast 64→128 3×3 s2 32×32", "gemm", {
      key: "other",
      heuristicMs: 3,
      tunedMs: 3,
    }),
    site("linear", "gemm", { heuristicMs: 0.5, tunedMs: 0.5 }),
    site("conv2d.weightOutTapChannel 64→64 3×3 s1 32×32", "gemm"), // not a pass: left out
  ];
  const rows = byLayer(sites);
  assert.deepEqual(rows.map((r) => `${r.layer}|${r.pass}`), [
    "layer1 64→64 3×3 (32×32)|forward",
    "layer1 64→64 3×3 (32×32)|grad weight",
    "layer2.0 64→128 3×3 s2|grad input",
    "classifier (linear)|forward",
  ]);
  const [fwd, gw, gi] = rows;
  assert.equal(fwd.heuristicMs, 28); // 4 × 7 on the heuristic path
  assert.equal(fwd.tunedMs, 24); // 4 × 6 on the tuned path
  assert.equal(fwd.sites, 1);
  assert.equal(fwd.dispatches, 4);
  assert.deepEqual(fwd.route, { heuristic: "channels-last", choice: "im2col", heuristicMs: 10, tunedMs: 8 });
  assert.equal(fwd.verifyHeuristicMs, 36); // the route's whole pass × 4
  assert.equal(fwd.verifyTunedMs, 48);
  assert.equal(gw.heuristicMs, 20);
  assert.equal(gw.tunedMs, 16);
  assert.equal(gw.changed, 1);
  assert.equal(gw.verifyTunedMs, 24);
  assert.equal(gi.sites, 2);
  assert.equal(gi.heuristicMs, 5);
  assert.equal(gi.verifyHeuristicMs, null);

  const run = { sites } as TuneRun;
  const table = byLayerTable(run);
  // Not slower by the tuner's times (the changed route is judged by its whole pass: 8 < 10), but re-timed
  // the forward (48 > 36 ms) and the grad weight (24 > 20 ms) are.
  assert.match(table, /passes with tuned > heuristic: none; re-timed: layer1 64→64 3×3 \(32×32\) forward/);
  assert.match(table, /layer1 64→64 3×3 \(32×32\) grad weight \(24\.00 vs 20\.00 ms\)/);
  assert.match(table, /\| all GEMMs of the step \| {2}\| 5 \(11\) \|/);
});
