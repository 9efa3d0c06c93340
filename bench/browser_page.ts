/**
 * The page side of `bench/browser.ts`: the cases of `bench/browser_cases.ts` behind `globalThis.bench`.
 *
 * @module
 */
import { initDevice } from "../engine/gpu.ts";
import { memoryStore } from "../engine/tune/store.ts";
import { benchMatmul1024, benchResNetStep, type CaseTiming } from "./browser_cases.ts";
import {
  compareTuningSteps,
  type RecordingOverhead,
  recordingOverhead,
  tuneResNetStep,
  type TuneRun,
  type TuningCompare,
} from "./tune_cases.ts";

/** What `bench/browser.ts` calls in the page. */
export interface BenchPage {
  /** Initialises the device with a kernel strategy; returns the adapter as the engine reports it. */
  init(
    kernels: "auto" | "software" | "gpu",
  ): Promise<{ adapter: string; kernels: string; userAgent: string }>;
  matmul(samples: number, calls: number): Promise<CaseTiming>;
  step(batch: number, steps: number): Promise<CaseTiming>;
  /** `deno task tune --fresh --verify N` in the page, on a memory cache (`bench/tune_cases.ts`). */
  tune(o: { batch: number; width: number; capMs: number; verifyReps: number }): Promise<TuneRun>;
  /** The step with tuning off and cached alternated (after `tune`), and the recording overhead. */
  compare(
    o: { batch: number; width: number; pairs: number; records: number },
  ): Promise<{ compare: TuningCompare; recording: RecordingOverhead }>;
  /** Progress lines of the running case (read and cleared by the caller). */
  takeLog(): string[];
}

const lines: string[] = [];

const bench: BenchPage = {
  async init(kernels) {
    const g = await initDevice({ kernels });
    const info = (await navigator.gpu.requestAdapter())?.info;
    const adapter = [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(" ");
    return {
      adapter: `${adapter}${g.report.isFallback ? " (fallback)" : ""}`,
      kernels: g.kernels,
      userAgent: navigator.userAgent,
    };
  },
  matmul: (samples, calls) => benchMatmul1024(samples, calls),
  step: (batch, steps) => benchResNetStep(batch, steps),
  tune: (o) =>
    tuneResNetStep({
      batch: o.batch,
      width: o.width,
      fresh: true,
      capMs: o.capMs,
      store: memoryStore(),
      verifyReps: o.verifyReps,
      log: (l) => lines.push(l),
    }),
  async compare(o) {
    const compare = await compareTuningSteps(o.batch, o.width, o.pairs, 2, (l) => lines.push(l));
    const recording = await recordingOverhead(o.batch, o.width, o.records);
    return { compare, recording };
  },
  takeLog: () => lines.splice(0),
};

(globalThis as { bench?: BenchPage }).bench = bench;
