/**
 * The stage contract of `deno task reproduce`: a stage gets its context, runs typed experiment functions,
 * and returns its checks (data), its part of summary.json and a renderer for its report section.
 * @module
 */
import { defaultConfig, type ExperimentConfig, type OptionsSpec } from "../lib/cli.ts";
import { type Check, type MarkdownReport, relativeLink } from "../report.ts";
import type { ReproduceConfig, ReproducePlan } from "./plan.ts";

/** Stage names, in run order. */
export const STAGES = ["theory", "fig1", "fig4", "fig5", "fig6", "section5", "randomLabels"] as const;
/** A stage name. */
export type StageName = typeof STAGES[number];

/** Report titles of the stages. */
export const STAGE_TITLES: Record<StageName, string> = {
  theory: "Theory (Sections 3.1–3.2): bound values",
  fig1: "Fig. 1: SC and CE toy problems",
  fig4: "Fig. 4: Corollary 2 vs gradient descent",
  fig5: "Fig. 5: per-batch SC minimisers",
  fig6: "Fig. 6: Theorem 2 vs the minimised mean SC loss",
  section5: "Section 5: ResNet-18 training, Fig. 7 geometry, theory vs practice",
  randomLabels: "Section 5.3: time to fit under random labels (Figs. 2, 8)",
};

/** Sub-folders of the stages under `--out`. */
export const STAGE_DIRS: Record<StageName, string> = {
  theory: "theory",
  fig1: "fig1",
  fig4: "fig4",
  fig5: "fig5",
  fig6: "fig6",
  section5: "section5",
  randomLabels: "random-labels",
};

/** What a stage sees. */
export interface StageContext {
  /** The parsed config. */
  cfg: ReproduceConfig;
  /** The plan. */
  plan: ReproducePlan;
  /** This stage's folder (not created yet). */
  dir: string;
  /** Progress line on stderr (silent with --quiet). */
  log: (line: string) => void;
}

/** What a stage returns. */
export interface StageBody {
  /** Comparisons with the paper. */
  checks: Check[];
  /** Its part of summary.json. */
  summary: unknown;
  /** Writes its section of the report. */
  render(r: MarkdownReport, reportDir: string): void;
}

/** A stage implementation. */
export type StageFn = (ctx: StageContext) => Promise<StageBody>;

/** The record of a stage that ran (or was skipped). */
export interface StageRecord {
  /** Stage name. */
  name: StageName;
  /** Title. */
  title: string;
  /** ok, error (it threw), or skipped. */
  status: "ok" | "error" | "skipped";
  /** Why it was skipped, or the error message. */
  note?: string;
  /** Wall time, seconds. */
  seconds: number;
  /** Its folder. */
  dir: string;
}

/** Loss names as the report writes them. */
export const LOSS_LABEL: Record<string, string> = { ce: "CE", "ce-fix": "CE-fix", sc: "SC" };

/**
 * A simulation's config for a stage: the script's defaults, the plan's `overrides`, the stage's folder,
 * the run's seed and --quiet (keys in the order the script's parser gives them).
 */
export function figureConfig<S extends OptionsSpec>(
  spec: S,
  overrides: Partial<ExperimentConfig<S>>,
  ctx: StageContext,
): ExperimentConfig<S> {
  const { out: _out, seed: _seed, json: _json, quiet: _quiet, ...options } = defaultConfig(spec, ctx.dir);
  return {
    ...options,
    ...overrides,
    seed: ctx.cfg.seed,
    out: ctx.dir,
    json: false,
    quiet: ctx.cfg.quiet,
  } as ExperimentConfig<S>;
}

/** `deno task <task> <args>`. */
export function command(task: string, args: readonly string[]): string {
  return ["deno task", task, ...args].join(" ");
}

/** A relative link from the report's folder ("." for the folder itself). */
export function rel(from: string, to: string): string {
  return relativeLink(from, to) || ".";
}

/** "Command: `deno task …` — outputs in [dir/](dir/)". */
export function cmdBullet(task: string, args: readonly string[], dir: string, reportDir: string): string {
  return `Command: \`${command(task, args)}\` — outputs in [\`${rel(reportDir, dir)}/\`](${
    rel(reportDir, dir)
  }/)`;
}

/** The first PNG of a list of files. */
export function pngOf(files: readonly string[]): string | undefined {
  return files.find((f) => f.endsWith(".png"));
}
