/**
 * Runs the planned stages of `deno task reproduce` in order: a crashing stage is recorded and the others
 * still run; collects every check and each stage's summary.
 * @module
 */
import { join } from "node:path";
import { initDevice } from "../../engine/gpu.ts";
import { type Check, fmtSeconds, isFailure } from "../report.ts";
import type { Mode, ReproduceConfig, ReproducePlan } from "./plan.ts";
import {
  STAGE_DIRS,
  STAGE_TITLES,
  type StageBody,
  type StageFn,
  type StageName,
  type StageRecord,
  STAGES,
} from "./stage.ts";

/** summary.json of `deno task reproduce`. */
export interface ReproduceSummary {
  /** Experiment name. */
  experiment: "reproduce";
  /** Size of the run. */
  mode: Mode;
  /** Every required check matches and no stage crashed. */
  pass: boolean;
  /** The process exit code (0, or 1). */
  exitCode: number;
  /** Wall time, seconds. */
  seconds: number;
  /** When the run started (ISO). */
  started: string;
  /** The adapter used (null when none). */
  adapter: string | null;
  /** Output folder. */
  out: string;
  /** The report. */
  report: string;
  /** The stages. */
  stages: StageRecord[];
  /** Ids of the required checks that differ. */
  failures: string[];
  /** Every check. */
  checks: Check[];
  /** Each stage's own summary. */
  results: Partial<Record<StageName, unknown>>;
}

/** The exit code of a finished run: 1 when a required check differs or a stage crashed, else 0. */
export function exitCodeFor(
  checks: readonly Check[],
  stages: readonly Pick<StageRecord, "status">[],
): number {
  return checks.some(isFailure) || stages.some((s) => s.status === "error") ? 1 : 0;
}

/** The stages a plan runs. */
export function wantedStages(plan: ReproducePlan): StageName[] {
  return STAGES.filter((s) =>
    s === "section5" ? plan.section5 !== null : s === "randomLabels" ? plan.randomLabels !== null : true
  );
}

/** What {@link runStages} collected. */
export interface StagesOutcome {
  /** One record per stage (skipped ones too). */
  records: StageRecord[];
  /** The bodies of the stages that finished. */
  bodies: Partial<Record<StageName, StageBody>>;
  /** Every check, in stage order. */
  checks: Check[];
  /** Each finished stage's summary. */
  results: Partial<Record<StageName, unknown>>;
  /** The adapter's name (null when no GPU stage ran). */
  adapter: string | null;
}

/** Runs every stage of `plan` with `impl` into `out`; `log` writes progress. */
export async function runStages(
  cfg: ReproduceConfig,
  plan: ReproducePlan,
  out: string,
  impl: Record<StageName, StageFn>,
  log: (line: string) => void,
): Promise<StagesOutcome> {
  const wanted = wantedStages(plan);
  const o: StagesOutcome = { records: [], bodies: {}, checks: [], results: {}, adapter: null };
  for (const name of STAGES) {
    const dir = join(out, STAGE_DIRS[name]);
    const title = STAGE_TITLES[name];
    if (!wanted.includes(name)) {
      const note = name === "section5" ? "--no-section5" : "only with --full or --random-labels";
      o.records.push({ name, title, status: "skipped", note, seconds: 0, dir });
      continue;
    }
    const k = `${wanted.indexOf(name) + 1}/${wanted.length}`;
    log(`\n[${k}] ${title}`);
    const s0 = performance.now();
    try {
      if (name !== "theory" && o.adapter === null) o.adapter = (await initDevice()).report.name;
      const body = await impl[name]({ cfg, plan, dir, log });
      o.bodies[name] = body;
      o.checks.push(...body.checks);
      o.results[name] = body.summary;
      const seconds = (performance.now() - s0) / 1000;
      o.records.push({ name, title, status: "ok", seconds, dir });
      const req = body.checks.filter((c) => c.required);
      const bad = req.filter(isFailure);
      log(
        `[${k}] ${name} done in ${fmtSeconds(seconds)}` +
          (req.length ? `: ${req.length - bad.length}/${req.length} required checks match` : "") +
          (bad.length ? ` — FAILED: ${bad.map((c) => c.id).join(", ")}` : ""),
      );
    } catch (e) {
      const seconds = (performance.now() - s0) / 1000;
      const msg = e instanceof Error ? e.message : String(e);
      o.records.push({ name, title, status: "error", note: msg, seconds, dir });
      console.error(`[${k}] ${name} FAILED after ${fmtSeconds(seconds)}: ${msg}`);
      if (!cfg.quiet && e instanceof Error && e.stack) console.error(e.stack);
    }
  }
  return o;
}
