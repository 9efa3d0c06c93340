/**
 * `deno task reproduce`: the whole reproduction of "Dissecting Supervised Contrastive Learning"
 * (ICML 2021) in one command, and its report.
 *
 * ```
 * deno task reproduce [--quick | --full] [--data PATH] [--dataset auto|cifar10|synthetic]
 *   [--random-labels] [--no-section5] [--out DIR] [--seed S] [--json] [--quiet]
 * ```
 *
 * Stages, each with progress on stderr and its own sub-folder of `--out` (default
 * `runs/reproduce-<UTC timestamp>`), each a module of `reproduce/stages/`:
 *
 * 1. theory: Theorem 2's means (824.487, 12.12015), the Fig. 1 simplex value 4.596, the regular
 *    simplex of Definition 3 and γ at the simplex (CPU, float64).
 * 2. fig1, fig4, fig5, fig6: the Section 3 toy simulations on the GPU.
 * 3. section5: ResNet-18 trained with CE, CE-fix and SC (reduced by default: width 1/8, a balanced
 *    2000-image subset, 120 iterations at b = 64 with augmentation), then the Fig. 7 geometry and the
 *    Section 5.2 bounds check on each checkpoint. CIFAR-10 when `--data PATH` is given or a
 *    `cifar-10-batches-bin` folder is found (`../shared/data/` relative to the working directory and to
 *    the repository, then `./data/`), else the built-in synthetic dataset.
 * 4. random-labels (only with `--full` or `--random-labels`): time to fit against label corruption.
 *
 * Writes `report.md` (every number next to the paper's, with a verdict and its reason, and the
 * figures linked relative to the report), `summary.json` and `config.json`.
 *
 * Exit codes: 0 when every required check matches (the theory values, Figs. 1, 4, 5 and 6 against
 * their theorems); 1 when a required check fails or a stage crashes; 2 for a usage error. The
 * Section 5 numbers of a reduced run differ from the paper's full-scale numbers: they are reported,
 * not failed.
 *
 * Modes: the default targets ≤ 10 minutes on the software adapter (llvmpipe); `--quick` is a
 * ≤ 2-minute smoke run (tiny sizes, used by the tests); `--full` uses the paper's settings
 * (ResNet-18 ×1 on all 50,000 images, 100k iterations at b = 256, with and without augmentation, the
 * full random-label sweep), which only makes sense on a real GPU.
 *
 * Layout: `reproduce/plan.ts` (options, modes, the plan), `reproduce/data.ts` (CIFAR-10 search),
 * `reproduce/stage.ts` (the stage contract), `reproduce/stages/*` (one module per stage, checks as
 * data), `reproduce/run.ts` (the stage loop), `reproduce/render.ts` (report.md); the paper's numbers
 * are in `paper.ts`.
 * @module
 */
import { join } from "node:path";
import { CliError, CliHelp, parseExperimentArgsOrThrow, runDir, saveConfig } from "./lib/cli.ts";
import { printJsonLine, writeSummary } from "./lib/summary.ts";
import { fmtSeconds, isFailure, writeReport } from "./report.ts";
import {
  makePlan,
  REPRODUCE_META,
  REPRODUCE_OPTIONS,
  type ReproduceConfig,
  type ReproducePlan,
} from "./reproduce/plan.ts";
import { exitCodeFor, type ReproduceSummary, runStages, wantedStages } from "./reproduce/run.ts";
import { renderReport } from "./reproduce/render.ts";
import type { StageFn, StageName } from "./reproduce/stage.ts";
import { DEFAULT_STAGES } from "./reproduce/stages/mod.ts";

export * from "./reproduce/plan.ts";
export * from "./reproduce/data.ts";
export * from "./reproduce/stage.ts";
export * from "./reproduce/stages/mod.ts";
export { exitCodeFor, type ReproduceSummary, runStages } from "./reproduce/run.ts";
export { renderReport } from "./reproduce/render.ts";
export { PAPER_SECTION_5_2, PAPER_TEST_ERROR, PAPER_THEORY } from "./paper.ts";
export type { DatasetName, LossName, ModelName, TrainConfig } from "./section5/config.ts";
export { RANDOM_LABELS_OPTIONS, type RandomLabelsConfig } from "./random_labels.ts";
export type { Check } from "./report.ts";

/** Result of {@link main}. */
export interface ReproduceResult {
  /** Exit code: 0 pass, 1 a required check failed or a stage crashed, 2 usage error. */
  code: number;
  /** The summary (null on a usage error or --help). */
  summary: ReproduceSummary | null;
}

/** Options of {@link main} (for tests). */
export interface MainOptions {
  /** Replace stage implementations. */
  stages?: Partial<Record<StageName, StageFn>>;
}

/** Parses and plans; a usage error or --help gives the result to return instead. */
function parseAndPlan(
  args: readonly string[],
): { cfg: ReproduceConfig; plan: ReproducePlan } | ReproduceResult {
  try {
    const cfg = parseExperimentArgsOrThrow(args, REPRODUCE_OPTIONS, REPRODUCE_META);
    return { cfg, plan: makePlan(cfg) };
  } catch (e) {
    if (e instanceof CliHelp) {
      console.log(e.text);
      return { code: 0, summary: null };
    }
    if (e instanceof CliError) {
      console.error(`error: ${e.message}\nRun with --help for usage.`);
      return { code: 2, summary: null };
    }
    throw e;
  }
}

/**
 * Runs `deno task reproduce` with `args` in-process: parses, runs every planned stage (a crashing
 * stage is recorded and the others still run), writes report.md, summary.json and config.json, and
 * prints the --json line. Returns the exit code (never calls Deno.exit).
 */
export async function main(args: readonly string[], options: MainOptions = {}): Promise<ReproduceResult> {
  const parsed = parseAndPlan(args);
  if ("code" in parsed) return parsed;
  const { cfg, plan } = parsed;
  const t0 = performance.now();
  const started = new Date().toISOString();
  const out = await runDir(cfg.out);
  await saveConfig(out, { ...cfg, plan });
  const log = (line: string) => {
    if (!cfg.quiet) console.error(line);
  };
  log(
    `reproduce (${plan.mode}): ${wantedStages(plan).length} stages → ${out}` +
      (plan.section5 ? `; Section 5 on ${plan.section5.data.note}` : ""),
  );
  const o = await runStages(cfg, plan, out, { ...DEFAULT_STAGES, ...options.stages }, log);
  const seconds = (performance.now() - t0) / 1000;
  const code = exitCodeFor(o.checks, o.records);
  const failures = o.checks.filter(isFailure).map((c) => c.id);
  const reportPath = join(out, "report.md");
  const summary: ReproduceSummary = {
    experiment: "reproduce",
    mode: plan.mode,
    pass: code === 0,
    exitCode: code,
    seconds,
    started,
    adapter: o.adapter,
    out,
    report: reportPath,
    stages: o.records,
    failures,
    checks: o.checks,
    results: o.results,
  };
  await writeReport(out, renderReport(summary, o.bodies, cfg));
  await writeSummary(out, summary);
  const required = o.checks.filter((c) => c.required).length;
  const crashed = o.records.filter((r) => r.status === "error").map((r) => r.name);
  log(
    `\nreproduce: ${code === 0 ? "PASS" : "FAIL"} — ${
      required - failures.length
    }/${required} required checks ` +
      `match${crashed.length ? `; crashed: ${crashed.join(", ")}` : ""}; ${
        fmtSeconds(seconds)
      } → ${reportPath}`,
  );
  if (cfg.json) {
    printJsonLine({
      experiment: "reproduce",
      mode: plan.mode,
      pass: summary.pass,
      exitCode: code,
      seconds,
      out,
      report: reportPath,
      stages: Object.fromEntries(o.records.map((r) => [r.name, { status: r.status, seconds: r.seconds }])),
      requiredChecks: required,
      failures,
      dataset: plan.section5?.data.dataset ?? null,
    });
  }
  return { code, summary };
}

if (import.meta.main) {
  const { code } = await main(Deno.args);
  Deno.exit(code);
}
