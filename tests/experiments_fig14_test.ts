/**
 * Figs. 1 and 4 (Section 3 toy simulations) on reduced sizes: converged values against the theory,
 * and the files each run writes. Tolerances are stated with each assertion.
 */
import assert, { deepStrictEqual as assertEquals } from "node:assert/strict";
import { join } from "node:path";
import { gpuTest, setup } from "./util.ts";
import { ceBoundCorollary2, scAnchorValueAtSimplex } from "../theory/mod.ts";
import { FIG1_OPTIONS, lambdaForBound, run as runFig1 } from "../experiments/fig1.ts";
import { FIG4_OPTIONS, logSpace, run as runFig4 } from "../experiments/fig4.ts";
import { balancedLabels, sampleBall, toyGeometry } from "../experiments/toy/ce_toy.ts";
import { Rng } from "../data/sampler.ts";
import { parseExperimentArgsOrThrow } from "../experiments/lib/cli.ts";
import { regularSimplex } from "../theory/mod.ts";

/** |actual − expected| ≤ tol. */
function assertAlmostEquals(actual: number, expected: number, tol: number): void {
  assert(Math.abs(actual - expected) <= tol, `${actual} vs ${expected} (tolerance ${tol})`);
}

async function assertFiles(dir: string, names: string[]): Promise<void> {
  for (const name of names) {
    const info = await Deno.stat(join(dir, name));
    assert(info.isFile && info.size > 0, `${name} missing or empty in ${dir}`);
  }
  const png = await Deno.readFile(join(dir, names.find((n) => n.endsWith(".png"))!));
  assertEquals([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(""), "PNG");
}

Deno.test("toy helpers: sampling in the ball / on the sphere, labels, simplex geometry", () => {
  const r = new Rng(3);
  const ball = sampleBall(500, 2, 1, r);
  const sphere = sampleBall(50, 3, 2, r, true);
  for (let i = 0; i < 500; i++) assert(Math.hypot(ball[2 * i], ball[2 * i + 1]) <= 1 + 1e-6);
  for (let i = 0; i < 50; i++) {
    assertAlmostEquals(Math.hypot(sphere[3 * i], sphere[3 * i + 1], sphere[3 * i + 2]), 2, 1e-5);
  }
  assertEquals([...balancedLabels(3, 2)], [0, 0, 1, 1, 2, 2]);
  // A collapsed configuration at the simplex has zero spread and 120° between class means.
  const s = regularSimplex(3, 2, 1);
  const labels = balancedLabels(3, 4);
  const Z = Float64Array.from([...labels].flatMap((c) => s[c]));
  const W = Float64Array.from(s.flatMap((v) => v.map((x) => 2 * x)));
  const g = toyGeometry(Z, labels, 3, 2, W);
  assert(g.maxSpread < 1e-12 && g.maxAngleErrorDeg < 1e-9, JSON.stringify(g));
  assertAlmostEquals(g.simplexAngleDeg, 120, 1e-12);
  for (const a of g.weightMeanAnglesDeg!) assert(a < 1e-6);
  for (const v of g.weightNorms!) assertAlmostEquals(v, 2, 1e-12);
});

Deno.test("lambdaForBound inverts the Corollary 2 bound (|bound − target| ≤ 1e-12)", () => {
  const lambda = lambdaForBound(3, 1, 0.265);
  assertAlmostEquals(ceBoundCorollary2(3, 1, lambda).bound, 0.265, 1e-12);
  assertEquals(logSpace(1e-3, 1, 4), [0.001, 0.01, 0.1, 1]);
});

Deno.test({
  name:
    "fig1 (reduced: 3×20 points): SC converges to the simplex value, CE objective to the Corollary 2 bound",
  ...gpuTest,
  fn: async () => {
    await setup();
    const out = await Deno.makeTempDir({ prefix: "fig1_test_" });
    try {
      const cfg = parseExperimentArgsOrThrow(
        [
          "--out",
          out,
          "--quiet",
          "--n-per-class",
          "20",
          "--sc-steps",
          "200",
          "--ce-steps",
          "300",
          "--seed",
          "1",
        ],
        FIG1_OPTIONS,
        { name: "fig1" },
      );
      const s = await runFig1(cfg);
      // SC: mean per anchor of the full batch of 60 points at ρ² = 5; the simplex value is
      // log(19 + 40·e^{−7.5}) (Theorem 2 with b = N, one batch). Within 1e-3 absolute.
      const simplex = scAnchorValueAtSimplex(20, 60, 3, 5);
      assertAlmostEquals(s.sc.simplexValue, simplex, 1e-12);
      assertAlmostEquals(Math.log(19 + 40 * Math.exp(-7.5)), simplex, 1e-12);
      assert(Math.abs(s.sc.final - simplex) <= 1e-3, `SC final ${s.sc.final} vs simplex ${simplex}`);
      assert(s.sc.snapshots[0].loss > s.sc.final + 1, "SC starts well above its minimum");
      // Classes collapse (spread < 5% of ρ); the angles between class means converge slowly because at
      // ρ² = 5 the loss hardly depends on them (a 5° error changes it by ~1e-4), so only 120° ± 10°.
      assert(s.sc.geometry.maxSpread < 0.05 * Math.sqrt(5), `SC spread ${s.sc.geometry.maxSpread}`);
      assert(
        s.sc.geometry.maxAngleErrorDeg < 10,
        `class means at 120° ± 10°: ${s.sc.geometry.meanAnglesDeg}`,
      );
      // CE: objective ≥ bound − 1e-5 (float32) and within 1e-3 relative of it; ‖w_y‖ ≈ r_W (1e-3 rel).
      const c2 = s.ce.corollary2;
      assertAlmostEquals(c2.bound, 0.265, 1e-9);
      assert(s.ce.final.objective >= c2.bound - 1e-5, `CE ${s.ce.final.objective} below bound ${c2.bound}`);
      assert(Math.abs(c2.relGap) <= 1e-3, `CE objective ${s.ce.final.objective} vs bound ${c2.bound}`);
      assert(Math.abs(c2.relGapWNorm) <= 1e-3, `mean ‖w‖ ${c2.meanWNorm} vs r_W ${c2.rW}`);
      // GPU float32 loss agrees with the float64 recomputation (1e-5 relative).
      assertAlmostEquals(s.ce.final.ce, s.ce.final.ceF64, 1e-5 * s.ce.final.ceF64 + 1e-7);
      assertEquals(s.sc.snapshots.length, 6);
      assertEquals(s.ce.snapshots.length, 6);
      await assertFiles(out, [
        "fig1_sc.csv",
        "fig1_ce.csv",
        "fig1_snapshots.csv",
        "fig1.svg",
        "fig1.png",
        "summary.json",
        "config.json",
      ]);
      const saved = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
      assertEquals(saved.paper.sc[5], 4.596);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "fig4 (reduced: 3 λ, 3×20 points): objective and mean ‖w_y‖ within 1e-3 relative of Corollary 2",
  ...gpuTest,
  fn: async () => {
    await setup();
    const out = await Deno.makeTempDir({ prefix: "fig4_test_" });
    try {
      const cfg = parseExperimentArgsOrThrow(
        ["--out", out, "--quiet", "--lambdas", "0.001,0.03,1", "--n-per-class", "20", "--steps", "300"],
        FIG4_OPTIONS,
        { name: "fig4" },
      );
      const s = await runFig4(cfg);
      assertEquals(s.rows.length, 3);
      for (const r of s.rows) {
        const th = ceBoundCorollary2(3, 1, r.lambda);
        assertAlmostEquals(r.bound, th.bound, 1e-12);
        assertAlmostEquals(r.rW, th.rW, 1e-12);
        // Relative 1e-3 (float32 on values 0.05..1), and never below the bound beyond float32 rounding.
        assert(Math.abs(r.relGapObjective) <= 1e-3, `λ=${r.lambda}: objective ${r.objective} vs ${r.bound}`);
        assert(r.objective >= r.bound * (1 - 1e-5), `λ=${r.lambda}: ${r.objective} below bound ${r.bound}`);
        assert(Math.abs(r.relGapWNorm) <= 1e-3, `λ=${r.lambda}: mean ‖w‖ ${r.meanWNorm} vs r_W ${r.rW}`);
        assert(
          r.maxAngleErrorDeg < 1,
          `λ=${r.lambda}: class means off the simplex by ${r.maxAngleErrorDeg}°`,
        );
      }
      assert(s.pass);
      await assertFiles(out, [
        "fig4.csv",
        "fig4_curves.csv",
        "fig4_theory.csv",
        "fig4.svg",
        "fig4.png",
        "summary.json",
      ]);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
