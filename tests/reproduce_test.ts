/**
 * `deno task reproduce`: the --quick run end to end (report.md with the theory numbers and links to
 * PNGs that exist, summary.json), the exit-code semantics (required checks and crashing stages fail,
 * reported Section 5 differences do not, usage errors give 2), the data search, and the report
 * helpers.
 */
import assert, { deepStrictEqual as assertEquals } from "node:assert/strict";
import { join } from "node:path";
import { gpuTest, setup } from "./util.ts";
import {
  chooseData,
  cifar10Candidates,
  exitCodeFor,
  main,
  makePlan,
  REPRODUCE_META,
  REPRODUCE_OPTIONS,
  type StageFn,
  trainFlags,
} from "../experiments/reproduce.ts";
import {
  type Check,
  compareNumber,
  escapeCell,
  fmtNum,
  imageLinks,
  isFailure,
  MarkdownReport,
  mdTable,
  verdictCell,
} from "../experiments/report.ts";
import { CliError, parseExperimentArgsOrThrow } from "../experiments/lib/cli.ts";
import { defaultTrainConfig } from "../experiments/section5/config.ts";
import { cifar10Files } from "../data/cifar.ts";

function parse(args: string[]) {
  return parseExperimentArgsOrThrow(args, REPRODUCE_OPTIONS, REPRODUCE_META);
}

function check(over: Partial<Check>): Check {
  return {
    id: "x",
    section: "s",
    quantity: "q",
    paper: "1",
    ours: "1",
    verdict: "matches",
    reason: "",
    required: true,
    ...over,
  };
}

async function isPng(path: string): Promise<boolean> {
  const b = await Deno.readFile(path);
  return b.length > 8 && b[0] === 0x89 && String.fromCharCode(b[1], b[2], b[3]) === "PNG";
}

// ---------------------------------------------------------------------------------------------------------------
// Pure logic

Deno.test("report helpers: number formatting, table escaping, verdicts, image links", () => {
  assertEquals(fmtNum(824.4873386, 9), "824.487339");
  assertEquals(fmtNum(12.12015013, 7), "12.12015");
  assertEquals(fmtNum(2.48e-4, 3), "2.48e-4");
  assertEquals(fmtNum(0, 3), "0");
  assertEquals(fmtNum(NaN), "NaN");
  assertEquals(fmtNum(null), "—");
  assertEquals(escapeCell("a|b\nc"), "a\\|b<br>c");
  assertEquals(mdTable(["A", "B"], [["1", "x|y"]]), "| A | B |\n|---|---|\n| 1 | x\\|y |");
  // |824.4873 − 824.487| = 3.4e-4 ≤ 5e-4: matches; 824.488 does not.
  const ok = compareNumber({
    id: "a",
    section: "t",
    quantity: "q",
    paper: 824.487,
    ours: 824.4873,
    tol: 5e-4,
    required: true,
  });
  assertEquals(ok.verdict, "matches");
  assert(!isFailure(ok));
  const bad = compareNumber({
    id: "b",
    section: "t",
    quantity: "q",
    paper: 824.487,
    ours: 824.488,
    tol: 5e-4,
    required: true,
  });
  assertEquals(bad.verdict, "differs");
  assert(isFailure(bad));
  assert(verdictCell(bad).startsWith("**FAILS**"), verdictCell(bad));
  const info = { ...bad, required: false };
  assert(!isFailure(info));
  assert(verdictCell(info).startsWith("differs: "), verdictCell(info));
  // NaN never matches.
  assertEquals(
    compareNumber({ id: "c", section: "t", quantity: "q", paper: 1, ours: NaN, tol: 1, required: true })
      .verdict,
    "differs",
  );
  const r = new MarkdownReport("T");
  r.paragraph("see ![a](fig1/fig1.png) and ![b c](x/y.png)");
  assertEquals(imageLinks(r.render()), ["fig1/fig1.png", "x/y.png"]);
});

Deno.test("exit code: 1 for a failing required check or a crashed stage, 0 for reported differences", () => {
  assertEquals(exitCodeFor([check({})], [{ status: "ok" }]), 0);
  assertEquals(exitCodeFor([check({ verdict: "differs" })], [{ status: "ok" }]), 1);
  assertEquals(exitCodeFor([check({ verdict: "differs", required: false })], [{ status: "ok" }]), 0);
  assertEquals(exitCodeFor([check({})], [{ status: "ok" }, { status: "error" }]), 1);
  assertEquals(exitCodeFor([], [{ status: "skipped" }]), 0);
});

Deno.test("plan: modes, flag conflicts, data choice and the search path", async () => {
  assert.throws(() => makePlan(parse(["--quick", "--full", "--dataset", "synthetic"])), CliError);
  const quick = makePlan(parse(["--quick", "--dataset", "synthetic", "--out", "o"]));
  assertEquals(quick.mode, "quick");
  assertEquals(quick.section5!.data.dataset, "synthetic");
  assertEquals(quick.section5!.train.dataset, "synthetic");
  assertEquals(quick.section5!.augment, [true]);
  assertEquals(quick.randomLabels, null);
  assertEquals(quick.figArgs.fig6, ["--steps", "150"]);
  const def = makePlan(parse(["--dataset", "synthetic", "--iterations", "7", "--width", "0.25"]));
  assertEquals([def.mode, def.section5!.train.iterations, def.section5!.train.width], ["default", 7, 0.25]);
  assertEquals(def.figArgs.fig1, []);
  const full = makePlan(parse(["--full", "--dataset", "synthetic"]));
  assertEquals(full.section5!.augment, [true, false]);
  assertEquals([full.section5!.train.iterations, full.section5!.train.batch, full.section5!.train.width], [
    100000,
    256,
    1,
  ]);
  assert(full.randomLabels !== null && full.randomLabels.ps.length === 6);
  assertEquals(makePlan(parse(["--no-section5", "--dataset", "synthetic"])).section5, null);
  assertEquals(makePlan(parse(["--random-labels", "--quick", "--dataset", "synthetic"])).randomLabels!.ps, [
    0,
    0.5,
  ]);

  // The search path: ../shared/data and ./data, relative to the working directory and the repository.
  const c = cifar10Candidates("/a/b", "/r/s");
  assertEquals(c, [
    "/a/shared/data/cifar-10-batches-bin",
    "/r/shared/data/cifar-10-batches-bin",
    "/a/b/data/cifar-10-batches-bin",
    "/r/s/data/cifar-10-batches-bin",
  ]);
  // --data must name a folder with the CIFAR-10 files.
  const dir = await Deno.makeTempDir({ prefix: "reproduce_cifar_" });
  try {
    assert.throws(() => chooseData({ data: dir, dataset: "auto" }), CliError);
    for (const f of [...cifar10Files("train"), ...cifar10Files("test")]) {
      await Deno.writeFile(join(dir, f), new Uint8Array(1));
    }
    const d = chooseData({ data: dir, dataset: "auto" });
    assertEquals([d.dataset, d.path], ["cifar10", dir]);
    assertEquals(chooseData({ data: dir, dataset: "synthetic" }).dataset, "synthetic");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // The equivalent `deno task train` flags list only what differs from its defaults.
  assertEquals(trainFlags({ ...defaultTrainConfig, loss: "sc", augment: false, width: 0.125, out: "x" }), [
    "--loss",
    "sc",
    "--width",
    "0.125",
    "--no-augment",
  ]);
});

Deno.test("usage errors exit with 2 and write nothing", async () => {
  const out = await Deno.makeTempDir({ prefix: "reproduce_usage_" });
  try {
    for (
      const args of [
        ["--quick", "--full"],
        ["--no-such-flag"],
        ["--data", join(out, "missing")],
        ["--iterations", "-3"],
      ]
    ) {
      const r = await main([...args, "--out", join(out, "run"), "--quiet"]);
      assertEquals(r.code, 2, args.join(" "));
      assertEquals(r.summary, null);
    }
    let written = true;
    try {
      await Deno.stat(join(out, "run"));
    } catch {
      written = false;
    }
    assert(!written, "a usage error must not create the output folder");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// End to end

Deno.test({
  name:
    "reproduce --quick (synthetic): report.md with the theory numbers and existing PNGs, summary.json, exit 0",
  ...gpuTest,
  fn: async () => {
    await setup();
    const out = await Deno.makeTempDir({ prefix: "reproduce_quick_" });
    try {
      const t0 = performance.now();
      const r = await main(["--quick", "--dataset", "synthetic", "--out", out, "--quiet", "--seed", "0"]);
      const seconds = (performance.now() - t0) / 1000;
      assertEquals(r.code, 0, JSON.stringify(r.summary?.failures) + JSON.stringify(r.summary?.stages));
      // --quick is the ≤ 2-minute smoke run (16–65 s measured on llvmpipe with 2 shared cores); the bound
      // leaves a margin for a machine loaded by other jobs and catches a plan that stopped being quick.
      assert(seconds < 240, `--quick took ${seconds.toFixed(0)} s`);
      const md = await Deno.readTextFile(join(out, "report.md"));
      for (const s of ["824.487", "824.487339", "12.12015", "12.12015013", "4.596", "167,960", "**PASS**"]) {
        assert(md.includes(s), `report.md lacks ${s}`);
      }
      // The Section 5 paper numbers are in the report, next to ours.
      for (const s of ["6.3", "16.4", "5.7", "824.731", "7.64e-5", "2.48e-4", "41.5"]) {
        assert(md.includes(s), `report.md lacks the paper's ${s}`);
      }
      // Every figure link is relative and points to an existing PNG; each stage links its figure.
      const links = imageLinks(md);
      for (const l of links) {
        assert(!l.startsWith("/") && !l.includes(":"), `link ${l} is not relative`);
        assert(await isPng(join(out, l)), `${l} is not a PNG`);
      }
      for (
        const f of [
          "fig1/fig1.png",
          "fig4/fig4.png",
          "fig5/fig5.png",
          "fig6/fig6.png",
          "section5/sc/geometry/geometry.png",
          "section5/ce/train/loss.png",
        ]
      ) assert(links.includes(f), `report.md does not link ${f}: ${links.join(", ")}`);
      // Every check has a verdict and a reason in the report's tables.
      const summary = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
      assertEquals([summary.experiment, summary.mode, summary.pass, summary.exitCode], [
        "reproduce",
        "quick",
        true,
        0,
      ]);
      assertEquals(summary.failures, []);
      const stages = Object.fromEntries(
        summary.stages.map((s: { name: string; status: string }) => [s.name, s.status]),
      );
      assertEquals(stages, {
        theory: "ok",
        fig1: "ok",
        fig4: "ok",
        fig5: "ok",
        fig6: "ok",
        section5: "ok",
        randomLabels: "skipped",
      });
      const checks = summary.checks as Check[];
      const required = checks.filter((c) => c.required);
      assert(required.length >= 12, `${required.length} required checks`);
      assert(required.every((c) => c.verdict === "matches"));
      for (const id of ["theory.thm2.cifar10", "theory.thm2.fig6", "fig4.agreement", "fig6.agreement"]) {
        assert(required.some((c) => c.id === id), `missing required check ${id}`);
      }
      // Section 5 checks are reported, never required; the reduced run differs from the paper.
      const s5 = checks.filter((c) => c.section === "section5");
      assert(s5.length > 10 && s5.every((c) => !c.required));
      assert(s5.some((c) => c.id === "section5.testError.sc.aug" && c.verdict === "differs"));
      for (const c of checks) assert(md.includes(c.quantity.replace(/\|/g, "\\|")), `report lacks ${c.id}`);
      assertEquals(summary.results.theory.cliMeanFig6, summary.results.fig6.theory);
      await Deno.stat(join(out, "config.json"));
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "reproduce exit codes: a failing required check or a crashing stage → 1, reported differences → 0",
  ...gpuTest,
  fn: async () => {
    await setup();
    const out = await Deno.makeTempDir({ prefix: "reproduce_exit_" });
    const stub = (checks: Check[]): StageFn => () =>
      Promise.resolve({
        checks,
        summary: { stub: true },
        render: (r) => void r.paragraph("stub stage").checks(checks),
      });
    const pass = stub([check({ id: "stub.ok" })]);
    const reported = stub([
      check({ id: "stub.reported", verdict: "differs", reason: "reduced", required: false }),
    ]);
    const failing = stub([
      check({ id: "stub.fail", verdict: "differs", reason: "off by 1", required: true }),
    ]);
    const crash: StageFn = () => Promise.reject(new Error("boom"));
    const args = (name: string) => ["--no-section5", "--out", join(out, name), "--quiet"];
    try {
      // The real theory stage plus stubbed simulations.
      const ok = await main(args("ok"), { stages: { fig1: pass, fig4: pass, fig5: reported, fig6: pass } });
      assertEquals(ok.code, 0);
      const okMd = await Deno.readTextFile(join(out, "ok", "report.md"));
      assert(okMd.includes("**PASS**") && okMd.includes("differs: reduced"), okMd.slice(0, 400));

      const bad = await main(args("bad"), { stages: { fig1: pass, fig4: failing, fig5: pass, fig6: pass } });
      assertEquals(bad.code, 1);
      assertEquals(bad.summary!.failures, ["stub.fail"]);
      const badMd = await Deno.readTextFile(join(out, "bad", "report.md"));
      assert(badMd.includes("**FAIL**") && badMd.includes("**FAILS** — differs: off by 1"));

      const crashed = await main(args("crash"), {
        stages: { fig1: pass, fig4: pass, fig5: crash, fig6: pass },
      });
      assertEquals(crashed.code, 1);
      assertEquals(crashed.summary!.stages.find((s) => s.name === "fig5")!.status, "error");
      assertEquals(
        crashed.summary!.stages.find((s) => s.name === "fig6")!.status,
        "ok",
        "later stages still run",
      );
      const crashMd = await Deno.readTextFile(join(out, "crash", "report.md"));
      assert(crashMd.includes("This stage crashed") && crashMd.includes("boom"));
      const saved = JSON.parse(await Deno.readTextFile(join(out, "crash", "summary.json")));
      assertEquals([saved.pass, saved.exitCode], [false, 1]);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
