/**
 * The issue-12 target lines that `deno task bench` prints (`peerSpeedupLines`, bench/run.ts): ratios from the
 * medians of one run, the conv 64→64 passes summed, "met" only at or past each target, nothing printed for a
 * case that did not run. CPU only (no device).
 */
import { equal, ok } from "node:assert/strict";
import { peerSpeedupLines } from "../bench/run.ts";
import type { CaseResult, Stats } from "../bench/harness.ts";

const stats = (median: number): Stats => ({ median, min: median, max: median, samples: [median] });

function row(id: string, results: Record<string, number>, flop?: number): CaseResult {
  const r: CaseResult = { id, group: "x", label: id, flop, results: {}, notes: {} };
  for (const [k, v] of Object.entries(results)) r.results[k] = stats(v);
  return r;
}

Deno.test("bench targets: matmul GFLOP/s and jax-js ratio, conv passes summed, ResNet step vs TF.js", () => {
  const conv = (pass: string, ours: number, jax: number) =>
    row(`conv-64-64-k3-s1-h32-${pass}`, { ours, jax, tfjs: 10 * ours });
  const lines = peerSpeedupLines([
    row("matmul-1024", { ours: 50, jax: 240, tfjs: 400 }, 2 * 1024 ** 3),
    conv("forward", 10, 60),
    conv("grad-input", 20, 90),
    conv("grad-weight", 30, 150),
    row("resnet18-step-b8", { ours: 1000, tfjs: 20000 }),
  ]);
  equal(lines.length, 3);
  ok(lines[0].includes("42.9 GFLOP/s (target ≥ 40: met)"), lines[0]);
  ok(lines[0].includes("ours 4.80× (target ≥ 5×: not met)"), lines[0]);
  ok(lines[1].includes("ours 60.0 ms; jax-js 300 ms → ours 5.00× (target ≥ 5×: met)"), lines[1]);
  ok(lines[2].includes("ours 20.00× (target ≥ 20×: met)"), lines[2]);
});

Deno.test("bench targets: a case that did not run (or a missing pass) prints no ratio", () => {
  const lines = peerSpeedupLines([
    row("matmul-1024", { ours: 100 }, 2 * 1024 ** 3),
    row("conv-64-64-k3-s1-h32-forward", { ours: 10, jax: 60 }),
    row("resnet18-step-b8", { ours: 1000 }),
  ]);
  equal(lines.length, 1);
  ok(lines[0].includes("(target ≥ 40: not met)") && !lines[0].includes("jax-js"), lines[0]);
});
